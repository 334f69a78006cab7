"""Labels arriving after a worker restart still find the predictions made before it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import WorkerProcess, produce, unique, wait_for, worker_env
from tests.integration.test_worker import committed

pytestmark = pytest.mark.integration

START = 1795255200.0
COUNT = 300


def predictions(model: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "timestamp": START + i * 0.1,
                "model": model,
                "model_version": "7",
                "prediction_id": f"{model}-{i}",
                "features": {"amount": 40.0 + i % 17},
                "prediction": 0.1 if i % 2 else 0.8,
            }
        ).encode()
        for i in range(COUNT)
    ]


def labels(model: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "timestamp": START + 600 + i * 0.1,
                "model": model,
                "prediction_id": f"{model}-{i}",
                "label": i % 3 == 0,
            }
        ).encode()
        for i in range(COUNT)
    ]


def test_restart__labels_for_predictions_made_before_it_are_scored(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    model = unique("joins")
    env = worker_env(broker.url, None, FIRELINE_DETECTION__CHECKPOINT_S="0.5")
    first = WorkerProcess(env, tmp_path / "first.log").start()
    topic = first.topic("predictions")

    def consumed(worker: WorkerProcess) -> float:
        return worker.metric("fireline_events_consumed_total", topic=topic)

    produce(broker.bootstrap_servers, topic, predictions(model), key=b"m")
    wait_for(lambda: consumed(first) >= COUNT, 30, "the predictions read by the first worker")
    assert first.stop() == 0  # checkpoints what it learnt, commits what it read
    group = env["FIRELINE_APP_ID"]
    assert committed(broker.bootstrap_servers, group, topic, 2) == COUNT  # none read again

    second = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        produce(broker.bootstrap_servers, second.topic("labels"), labels(model), key=b"m")
        wait_for(
            lambda: (
                second.metric("fireline_label_joins_total", model=model, outcome="matched") == COUNT
            ),
            30,
            f"{COUNT} labels matched after the restart",
        )
        assert second.metric("fireline_label_joins_total", model=model, outcome="unmatched") == 0
        assert consumed(second) == 0  # the predictions came from the checkpoint, not a replay
    finally:
        second.stop()

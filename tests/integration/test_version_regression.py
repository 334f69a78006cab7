"""A worse model version, through a real broker and a real worker: a version_regression."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from agents.kafka.broker import EmbeddedBroker
from fireline.detections import INPUT_ADAPTER, DetectionInput
from tests.integration.support import WorkerProcess, consume, produce, wait_for, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("worker")
    playbooks = directory / "playbooks"
    playbooks.mkdir()
    process = WorkerProcess(worker_env(broker.url, None, playbooks), directory / "log").start()
    yield process
    process.stop()


def predictions(model: str, version: str, start: int, n: int, softness: float) -> list[bytes]:
    """A fraud classifier's log; ``softness`` makes its scores less confident (worse)."""
    rng = np.random.default_rng(start)
    events = []
    for i in range(start, start + n):
        positive = bool(rng.random() < 0.2)
        confidence = 1.0 - float(rng.uniform(0.0, 0.02 + softness))
        body = {
            "timestamp": 1795255200.0 + i * 0.1,
            "model": model,
            "model_version": version,
            "prediction_id": f"{model}-{i}",
            "features": {"amount": float(rng.normal(100, 10)), "country": "DE"},
            "prediction": confidence if positive else 1.0 - confidence,
            "latency_ms": float(rng.gamma(9.0, 2.0)),
        }
        events.append(json.dumps(body).encode())
    return events


def regressions(broker: EmbeddedBroker, worker: WorkerProcess, model: str, timeout_s: float):
    found = consume(
        broker.bootstrap_servers,
        worker.topic("detections"),
        1,
        timeout_s,
        where=lambda m: b'"version_regression"' in m.value() and model.encode() in m.value(),
    )
    parsed = [INPUT_ADAPTER.validate_json(m.value()) for m in found]
    return [i.detection for i in parsed if isinstance(i, DetectionInput)]


def test_a_worse_version_raises_a_version_regression_naming_both_versions(broker, worker):
    events = predictions("deployed", "1", 0, 4000, softness=0.0)
    events += predictions("deployed", "2", 4000, 3000, softness=0.4)
    produce(broker.bootstrap_servers, worker.topic("predictions"), events, key=b"deployed")
    found = regressions(broker, worker, "deployed", 60)
    assert found, "no version_regression for the worse version 2"
    regression = found[0]
    assert regression.labels == {
        "model": "deployed",
        "model_version": "2",
        "previous_version": "1",
    }
    assert regression.comparison is not None
    assert regression.comparison.baseline_version == "1"
    assert any(f.worse for f in regression.comparison.figures)
    assert regression.signal.message.startswith("deployed v2 is worse than v1: ")
    assert worker.metric(
        "fireline_model_performance",
        model="deployed",
        version="2",
        metric="accuracy",
        source="estimated",
    ) < worker.metric(
        "fireline_model_performance",
        model="deployed",
        version="1",
        metric="accuracy",
        source="estimated",
    )


def test_an_equally_good_version_raises_nothing(broker, worker):
    topic = worker.topic("predictions")
    before = worker.metric("fireline_events_consumed_total", topic=topic)
    events = predictions("retrained", "1", 0, 4000, softness=0.0)
    events += predictions("retrained", "2", 4000, 3000, softness=0.0)
    produce(broker.bootstrap_servers, topic, events, key=b"retrained")
    # A positive signal first: every event was handled (counted after its batch published).
    wait_for(
        lambda: (
            worker.metric("fireline_events_consumed_total", topic=topic) >= before + len(events)
        ),
        60,
        "every prediction consumed",
    )
    assert (
        worker.metric(
            "fireline_model_performance",
            model="retrained",
            version="2",
            metric="accuracy",
            source="estimated",
        )
        > 0.98
    )
    assert regressions(broker, worker, "retrained", 5) == []


def test_a_worse_version_deployed_while_the_worker_was_down_is_compared_with_the_old_one(
    broker: EmbeddedBroker, tmp_path
):
    """The comparison's checkpoint outlives the worker: v2 is not its own baseline after a restart."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    env = worker_env(broker.url, None, playbooks)
    first = WorkerProcess(env, tmp_path / "first.log").start()
    topic = first.topic("predictions")
    events = predictions("redeployed", "1", 0, 4000, softness=0.0)
    produce(broker.bootstrap_servers, topic, events, key=b"redeployed")
    wait_for(
        lambda: first.metric("fireline_events_consumed_total", topic=topic) >= len(events),
        60,
        "every v1 prediction consumed",
    )
    first.stop()  # a clean stop checkpoints what changed; v2 goes out while it is down

    later = predictions("redeployed", "2", 4000, 3000, softness=0.4)
    produce(broker.bootstrap_servers, topic, later, key=b"redeployed")
    second = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        found = regressions(broker, second, "redeployed", 60)
        assert found, f"no version_regression for v2 after the restart:\n{second.log()}"
        assert found[0].comparison is not None
        assert found[0].comparison.baseline_version == "1"
        assert found[0].labels["previous_version"] == "1"
    finally:
        second.stop()

"""A worker stopped while it works through a backlog exits promptly and cleanly."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from agents.kafka.broker import EmbeddedBroker, create_topics
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    metric_event,
    produce,
    wait_for,
    worker_env,
)
from tests.integration.test_examples import story

pytestmark = pytest.mark.integration


def test_worker__sigterm_while_reading_a_backlog_exits_within_seconds(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path
) -> None:
    env = worker_env(broker.url, slack)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    names = [v for k, v in env.items() if k.startswith("FIRELINE_TOPICS__")]
    asyncio.run(create_topics(broker.bootstrap_servers, names, 2))
    events = (json.dumps(event).encode() for event in story())
    sent = produce(broker.bootstrap_servers, worker.topic("predictions"), events, key=b"fraud")
    samples = (
        metric_event(1795255200.0 + i, 20.0 + i % 7, f"backlog-{i % 500}") for i in range(60_000)
    )
    sent += produce(broker.bootstrap_servers, worker.topic("metrics"), samples)
    worker.launch()
    wait_for(
        lambda: (
            worker.get("/metrics")[0] == 200 and worker.metric("fireline_events_consumed_total") > 0
        ),
        60,
        "the worker to read its first events",
    )
    assert worker.metric("fireline_events_consumed_total") < sent  # in the middle of it
    # A stop in the middle: partitions revoked with events in flight, checkpoints
    # and label joins half written. (Once seen under load: Faust's "Unrecognized
    # partition" while stopping, and the worker deaf to SIGTERM for 30 s.)
    assert worker.stop(signal.SIGTERM, timeout_s=20) == 0
    assert "Error while stopping" not in worker.log()

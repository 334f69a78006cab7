"""A real worker runs a playbook with the log and kafka actions: the publisher is wired in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import numpy as np
import pytest

from agents.kafka.broker import EmbeddedBroker, create_topics
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    metric_event,
    produce,
    unique,
    worker_env,
)

pytestmark = pytest.mark.integration

PLAYBOOK = """\
name: copy-and-log
match:
  kinds: [latency_spike]
steps:
  - log: {{level: warning, message: copied}}
  - kafka: {{topic: {topic}}}
"""


@pytest.fixture(scope="module")
def copy_topic(broker: EmbeddedBroker) -> str:
    topic = unique("it.incident-copy")
    asyncio.run(create_topics(broker.bootstrap_servers, [topic], 1))
    return topic


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, copy_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "copy.yaml").write_text(PLAYBOOK.format(topic=copy_topic))
    slack = SlackServer().start()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = WorkerProcess(worker_env(broker.url, slack, directory), log).start()
    yield process
    process.stop()
    slack.stop()


def test_worker__kafka_action_publishes_through_the_workers_producer(broker, worker, copy_topic):
    service = "copy-api"
    rng = np.random.default_rng(5)
    values = [*rng.normal(48.0, 2.0, 200), *rng.normal(420.0, 15.0, 25)]
    events = [
        metric_event(1795255200.0 + i * 0.1, round(float(v), 2), service)
        for i, v in enumerate(values)
    ]
    produce(broker.bootstrap_servers, worker.topic("metrics"), events, key=service.encode())
    [copy] = consume(broker.bootstrap_servers, copy_topic, 1, 45.0)
    incident = json.loads(copy.value())
    assert incident["service"] == service
    assert incident["transition"] == "opened"
    assert copy.key() == incident["id"].encode()
    audit = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        2,
        15.0,
        where=lambda m: m.key() == copy.key(),
    )
    results = sorted((json.loads(m.value()) for m in audit), key=lambda r: r["action"])
    assert [(r["action"], r["ok"], r["target"]) for r in results] == [
        ("kafka", True, copy_topic),
        ("log", True, "fireline.actions"),
    ]
    assert f"incident {incident['id']} opened: " in worker.log()

"""Slack and webhook outages under load: detection keeps its pace, actions retry, then escalate.

One worker; its playbook posts to Slack and calls two webhooks. The same load
of metric samples is sent twice: once with every stand-in healthy, once while
Slack answers every call 429 with Retry-After (a rate-limit storm), one
webhook answers 503 and the other does not answer before the step's timeout,
and incidents are opening. Detection runs on the hot path, the playbooks in an
agent of their own: the throughput with the outage is printed next to the one
without, and only a generous bound is asserted. Every step ends with an audit
record: failed after its retries, the last one escalating its incident.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.kafka.broker import EmbeddedBroker
from tests.chaos.stand_ins import Fault, HttpStandIn
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    metric_event,
    unique,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

LOAD = 30_000  # samples per measurement
SERIES = 30
INCIDENTS = 3
#: Generous: the hot path must not stall behind the failing playbooks.
MIN_RATIO = 0.3

PLAYBOOK = """\
name: outage-remediate
match: {{kinds: [latency_spike], transitions: [opened], services: ["outage-*"]}}
steps:
  - slack: {{}}
    name: slack-root
    retries: 1
    backoff: 0.2s
    on_failure: continue
  - webhook: {{url: "{down}"}}
    name: hook-down
    retries: 2
    backoff: 0.2s
    on_failure: continue
  - webhook: {{url: "{slow}"}}
    name: hook-slow
    timeout: 1s
    retries: 1
    backoff: 0.2s
    on_failure: escalate
"""
#: step name → (attempts, escalates) of its audit record in the outage
EXPECTED = {"slack-root": (2, False), "hook-down": (3, False), "hook-slow": (2, True)}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[HttpStandIn]:
    server = HttpStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    slack: SlackServer,
    stand_in: HttpStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    playbooks = tmp_path_factory.mktemp("playbooks")
    (playbooks / "outage.yaml").write_text(
        PLAYBOOK.format(down=stand_in.url("/down"), slow=stand_in.url("/slow"))
    )
    log = Path(tmp_path_factory.mktemp("worker")) / "worker.log"
    process = WorkerProcess(worker_env(broker.url, slack, playbooks), log).start()
    yield process
    process.stop()


def steady_load(tag: str, start: float) -> list[tuple[bytes, bytes]]:
    """``LOAD`` quiet samples over ``SERIES`` series, as (key, value)."""
    rng = np.random.default_rng(7)
    values = rng.normal(48, 2.0, LOAD)
    out = []
    for i, value in enumerate(values):
        service = f"load-{tag}-{i % SERIES}"
        at = start + (i // SERIES) * 0.1
        out.append((service.encode(), metric_event(at, round(float(value), 2), service)))
    return out


def spikes(tag: str) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(11)
    out = []
    for n in range(INCIDENTS):
        service = f"outage-{tag}-{n}"
        values = [*rng.normal(48, 2.5, 120), *rng.normal(420, 15, 20)]
        out += [
            (service.encode(), metric_event(1795255200.0 + i * 0.1, round(float(v), 2), service))
            for i, v in enumerate(values)
        ]
    return out


def send(broker: EmbeddedBroker, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    for key, value in records:
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
    assert producer.flush(30) == 0


def events_per_s(broker: EmbeddedBroker, worker: WorkerProcess, tag: str, start: float) -> float:
    """Send ``LOAD`` samples and time the worker until it has consumed every one."""
    topic = worker.topic("metrics")
    records = steady_load(tag, start)
    before = worker.metric("fireline_events_consumed_total", topic=topic)
    began = time.monotonic()
    send(broker, topic, records)
    wait_for(
        lambda: worker.metric("fireline_events_consumed_total", topic=topic) >= before + LOAD,
        120,
        f"{LOAD} samples consumed",
    )
    return LOAD / (time.monotonic() - began)


def audit(broker: EmbeddedBroker, worker: WorkerProcess, ids: set[str]) -> list[dict[str, Any]]:
    return [
        record
        for message in consume(broker.bootstrap_servers, worker.topic("actions"), 10**6, 3)
        if (record := json.loads(message.value())).get("incident_id") in ids
    ]


def test_outages__detection_keeps_its_pace_steps_retry_then_escalate_nothing_lost(
    broker, worker, slack, stand_in
):
    tag = unique("o")[2:]
    healthy = events_per_s(broker, worker, f"{tag}-healthy", 1795255200.0)

    slack.outage, slack.retry_after = 429, "1"
    stand_in.faults["/down"] = Fault(status=503)
    stand_in.faults["/slow"] = Fault(delay_s=20.0)  # never in time, even on a busy loop
    try:
        send(broker, worker.topic("metrics"), spikes(tag))
        wait_for(
            lambda: len(slack.called("chat.postMessage")) > 0,
            60,
            "the playbooks to meet the Slack outage",
        )
        degraded = events_per_s(broker, worker, f"{tag}-outage", 1795265200.0)

        incidents: dict[str, str] = {}

        def opened() -> bool:
            for message in consume(broker.bootstrap_servers, worker.topic("incidents"), 10**6, 3):
                incident = json.loads(message.value())
                if str(incident.get("service", "")).startswith(f"outage-{tag}"):
                    incidents.setdefault(incident["service"], incident["id"])
            return len(incidents) == INCIDENTS

        wait_for(opened, 60, f"{INCIDENTS} incidents")
        ids = set(incidents.values())
        records: list[dict[str, Any]] = []

        def every_step_recorded() -> bool:
            records[:] = audit(broker, worker, ids)
            return len({(r["incident_id"], r["step"]) for r in records}) == INCIDENTS * 3

        wait_for(every_step_recorded, 120, f"an audit record for each of {INCIDENTS * 3} steps")
    finally:
        slack.outage, slack.retry_after = 0, None
        stand_in.faults.clear()

    ratio = degraded / healthy
    requests = len(slack.called("chat.postMessage")) + len(stand_in.requests)
    print(
        f"\nCHAOS outages: {LOAD} samples at {healthy:,.0f} events/s healthy, "
        f"{degraded:,.0f} events/s during the Slack 429 storm and webhook 503s/timeouts "
        f"(ratio {ratio:.2f}); {INCIDENTS} incidents, {requests} requests refused or timed "
        f"out, {len(records)} audit records"
    )
    assert ratio > MIN_RATIO, f"throughput fell to {ratio:.0%} during the outage"
    for record in records:
        attempts, escalates = EXPECTED[record["step"]]
        assert (record["outcome"], record["attempts"], record["escalate"]) == (
            "failed",
            attempts,
            escalates,
        ), [(r["step"], r["outcome"], r["attempts"], r["detail"]) for r in records]
    assert len(stand_in.received("/down")) == INCIDENTS * 3  # retried: 1 + 2 each

    def escalated() -> bool:
        events = consume(broker.bootstrap_servers, worker.topic("incidents"), 10**6, 3)
        return {
            json.loads(m.value())["id"]
            for m in events
            if json.loads(m.value()).get("transition") == "escalated"
        } >= ids

    wait_for(escalated, 60, "every incident escalated by its failed last step")

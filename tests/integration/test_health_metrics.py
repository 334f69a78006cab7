"""The worker's own health on /metrics: consumer lag, last event per topic, readiness.

Lag is made real, not simulated: a playbook step blocks on a command until the test
releases that incident, so the playbooks agent stops at it while more events
arrive behind it. Each record is produced as a batch of its own, because the
embedded Tansu broker reports a partition's end offset as its last *batch's* base
offset + 1 (agents/kafka/lag.py): with one-record batches that is exact.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from agents.kafka.broker import EmbeddedBroker
from agents.kafka.durable_table import partition_of
from tests.factories import make_incident
from tests.integration.support import (
    WorkerProcess,
    metric_event,
    produce,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

# The blocking step: it says it started for an incident, then waits for its release.
HOLD = """\
import json, pathlib, sys, time
gate, incident = pathlib.Path(sys.argv[1]), json.load(sys.stdin)["id"]
(gate / f"{incident}.started").touch()
while not (gate / f"{incident}.released").exists():
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the blocking step says it started, and where the test releases it."""
    return tmp_path_factory.mktemp("gate")


def release(gate: Path, *incidents: str) -> None:
    for incident in incidents:
        (gate / f"{incident}.released").touch()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, gate: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    playbooks = tmp_path_factory.mktemp("playbooks")
    argv = [sys.executable, "-c", HOLD, str(gate)]
    step = {"retrain": {"provider": "command", "argv": argv, "timeout_s": 120}, "timeout": "2m"}
    playbook = {"name": "hold", "match": {"kinds": ["lag_probe"]}, "steps": [step]}
    (playbooks / "hold.yaml").write_text(yaml.safe_dump(playbook))
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    # No deadline ticks: one queued behind the blocked step would count in its lag.
    env = worker_env(broker.url, None, playbooks, FIRELINE_INCIDENTS__TICK_S="3600")
    process = WorkerProcess(env, log).start()
    yield process
    release(gate, *(f.name.removesuffix(".started") for f in gate.glob("*.started")))
    process.stop()


def samples(worker: WorkerProcess, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``name`` on /metrics, by its sorted labels."""
    _, text = worker.get("/metrics")
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def lag(worker: WorkerProcess, topic: str, partition: int) -> float | None:
    found = samples(worker, "fireline_consumer_lag")
    return found.get((("partition", str(partition)), ("topic", topic)))


def produce_one_per_batch(bootstrap: str, topic: str, values: list[bytes], partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
        assert producer.flush(15) == 0  # sent and acknowledged alone: a batch of one record


def test_lag__reports_every_owned_partition_of_the_consumed_topics_only(worker):
    consumed = {worker.topic(t) for t in ("metrics", "predictions", "labels")} | {
        worker.topic(t) for t in ("detections", "incidents", "approvals", "action_requests")
    }
    expected = {(("partition", str(p)), ("topic", t)) for t in consumed for p in (0, 1)}
    wait_for(
        lambda: set(samples(worker, "fireline_consumer_lag")) == expected,
        30,
        "a lag sample for both partitions of each consumed topic (and none for changelogs)",
    )


def hold(broker: EmbeddedBroker, worker: WorkerProcess, gate: Path, ids: list[str]) -> None:
    """Produce incidents ``ids`` to incidents[0], one per batch; wait until the first blocks."""
    events = [make_incident(id=i, kind="lag_probe").model_dump_json().encode() for i in ids]
    produce_one_per_batch(broker.bootstrap_servers, worker.topic("incidents"), events, 0)
    wait_for((gate / f"{ids[0]}.started").exists, 30, f"the step to block on {ids[0]}")


def test_lag__counts_events_waiting_behind_a_blocked_step_then_returns_to_zero(
    broker, worker, gate
):
    # The playbook's owner runs it: the requests wait on its partition of action-requests.
    requests, owner = worker.topic("action_requests"), partition_of(b"hold", 2)
    wait_for(lambda: lag(worker, requests, owner) == 0, 30, "the requests partition reported")

    # Nothing committed on this partition yet: the lag counts from its log start.
    first = [f"inc-lag-{i}" for i in range(5)]
    hold(broker, worker, gate, first)
    wait_for(lambda: lag(worker, requests, owner) == 5, 30, f"a lag of 5 on {requests}")
    assert lag(worker, requests, 1 - owner) == 0
    release(gate, *first)
    wait_for(lambda: lag(worker, requests, owner) == 0, 30, "the lag to return to 0 once released")

    # Offsets 0-4 committed: the next three are counted from the committed offset.
    second = [f"inc-lag-{i}" for i in range(5, 8)]
    hold(broker, worker, gate, second)
    wait_for(lambda: lag(worker, requests, owner) == 3, 30, f"a lag of 3 on {requests}")
    release(gate, *second)
    wait_for(lambda: lag(worker, requests, owner) == 0, 30, "the lag to return to 0 again")
    retrains = samples(worker, "fireline_actions_total")
    assert retrains[(("action", "retrain"), ("outcome", "ok"))] == 8


def test_last_event__is_the_time_the_worker_finished_a_batch_of_that_topic(broker, worker):
    metrics, labels = worker.topic("metrics"), worker.topic("labels")
    before = time.time()
    produce(
        broker.bootstrap_servers,
        metrics,
        [metric_event(1795255200.0 + i, 48.0, "clock-api") for i in range(20)],
        key=b"clock-api",
    )

    def stamp(topic: str) -> float | None:
        return samples(worker, "fireline_last_event_timestamp_seconds").get((("topic", topic),))

    wait_for(
        lambda: (stamp(metrics) or 0.0) >= before,
        30,
        "the metrics topic's last-event time to pass the produce time",
    )
    assert before <= (stamp(metrics) or 0.0) <= time.time()
    assert stamp(labels) is None  # nothing consumed there yet


def test_ready__gauges_follow_the_readiness_checks(worker):
    wait_for(
        lambda: samples(worker, "fireline_ready") == {(): 1.0},
        30,
        "fireline_ready to report 1",
    )
    checks = samples(worker, "fireline_readiness_check")
    assert checks == {
        (("check", c),): 1.0 for c in ("broker", "topics", "consumer_group", "playbooks")
    }


def test_failure_series__start_at_zero_for_the_alert_rules(worker):
    invalid = samples(worker, "fireline_events_invalid_total")
    assert invalid[(("reason", "not_json"), ("topic", worker.topic("labels")))] == 0
    failed = samples(worker, "fireline_actions_total")
    assert failed[(("action", "slack"), ("outcome", "failed"))] == 0
    chat = samples(worker, "fireline_chat_calls_total")
    assert chat[(("method", "chat.postMessage"), ("outcome", "unreachable"))] == 0

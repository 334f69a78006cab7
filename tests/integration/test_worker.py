"""The whole loop against a real broker, a real worker process and a Slack stand-in."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import (
    SLACK_TOKEN,
    SlackServer,
    WorkerProcess,
    consume,
    end_offsets,
    metric_event,
    produce,
    unique,
    wait_for,
    wait_processed,
    worker_env,
)

pytestmark = pytest.mark.integration

LIBRARY = Path(__file__).parents[2] / "playbooks" / "library"


@pytest.fixture(scope="module")
def playbooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("playbooks")
    shutil.copy(LIBRARY / "latency-spike.yaml", directory / "latency-spike.yaml")
    return directory


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    slack: SlackServer,
    playbooks_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = WorkerProcess(worker_env(broker.url, slack, playbooks_dir), log).start()
    yield process
    process.stop()


def latency_series(
    service: str, normal: int, spike: int, seed: int, start: float = 1795255200.0
) -> list[bytes]:
    rng = np.random.default_rng(seed)
    values = [*rng.normal(48, 2.5, normal), *rng.normal(420, 15, spike)]
    return [
        metric_event(start + i * 0.1, round(float(v), 2), service) for i, v in enumerate(values)
    ]


def spike_incident(
    broker: EmbeddedBroker, worker: WorkerProcess, slack: SlackServer, service: str, seed: int
) -> Any:
    """Send a latency spike for ``service``; return its incident record once Slack has the message."""
    produce(
        broker.bootstrap_servers,
        worker.topic("metrics"),
        latency_series(service, 200, 25, seed=seed),
        key=service.encode(),
    )
    wait_for(lambda: slack.messages(service), 30, f"a Slack message for {service}")
    incidents = consume(
        broker.bootstrap_servers,
        worker.topic("incidents"),
        1,
        20,
        where=lambda m: service.encode() in m.value(),
    )
    assert incidents, f"no incident event for {service}"
    return incidents[0]


def test_worker__latency_spike_sends_one_slack_message(broker, worker, slack):
    produce(
        broker.bootstrap_servers,
        worker.topic("metrics"),
        latency_series("checkout-api", 200, 25, seed=1),
        key=b"checkout-api",
    )
    wait_for(lambda: slack.messages("checkout-api"), 30, "a Slack message for checkout-api")
    # Every sample, detection and incident event handled: a second message would be sent.
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    (text,) = slack.messages("checkout-api")
    assert "Latency spike on checkout-api" in text
    assert "Subject: checkout-api / model checkout-api-model v7" in text
    lines = [line for line in text.splitlines() if line.startswith("latency_ms{")]
    assert len(lines) == 1
    observed = float(lines[0].split("observed ")[1].split(" ")[0])
    normal = float(lines[0].split("normal ")[1].split(" ")[0])
    assert 380 < observed < 480
    assert 44 < normal < 52
    call = next(c for c in slack.calls if "checkout-api" in str(c.body.get("text")))
    assert call.authorization == f"Bearer {SLACK_TOKEN}"
    assert call.body["channel"] == "#fireline-alerts"
    assert SLACK_TOKEN not in worker.log()


def test_worker__incident_event_is_published_keyed_by_id(broker, worker, slack):
    incident = spike_incident(broker, worker, slack, "search-api", seed=2)
    body = json.loads(incident.value())
    assert incident.key() == body["id"].encode()
    assert (body["kind"], body["transition"], body["service"]) == (
        "latency_spike",
        "opened",
        "search-api",
    )
    assert body["signals"][0]["observed"] > 5 * body["signals"][0]["baseline"]


def test_worker__stationary_stream_sends_nothing(broker, worker, slack):
    rng = np.random.default_rng(3)
    values = rng.normal(48, 2.5, 2000)
    events = [
        metric_event(1795255200.0 + i * 0.1, round(float(v), 2), "steady-api")
        for i, v in enumerate(values)
    ]
    before = worker.metric("fireline_events_consumed_total", topic=worker.topic("metrics"))
    produce(broker.bootstrap_servers, worker.topic("metrics"), events, key=b"steady-api")
    wait_for(
        lambda: (
            worker.metric("fireline_events_consumed_total", topic=worker.topic("metrics"))
            >= before + 2000
        ),
        30,
        "the worker to consume the stationary stream",
    )
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    assert slack.messages("steady-api") == []


def test_worker__bad_events_go_to_dead_letter_and_good_ones_are_processed(broker, worker, slack):
    good = latency_series("mixed-api", 200, 25, seed=4)
    bad = {
        b"\xff\xfe not utf-8": "not_utf8",
        b"{truncated": "not_json",
        b'{"timestamp": 1795255200, "name": "latency_ms", "value": NaN, "labels": {}}': "not_finite",
        b'{"timestamp": 1795255200, "name": "latency_ms", "value": "12ms", "labels": {}}': "wrong_type",
        b'{"timestamp": 1795255200, "name": "latency_ms"}': "missing_field",
        b'{"timestamp": 1795255200, "name": "latency_ms", "value": 1, "pad": "'
        + b"x" * 70_000
        + b'"}': "oversized",
    }
    stream = list(good)
    for index, value in enumerate(bad):
        stream.insert(30 + index * 35, value)  # among the normal points and the spike
    produce(broker.bootstrap_servers, worker.topic("metrics"), stream, key=b"mixed-api")

    dead = consume(broker.bootstrap_servers, worker.topic("dead_letter"), len(bad), 30)
    assert len(dead) == len(bad)
    for message in dead:
        headers = {k: v.decode() for k, v in message.headers()}
        assert headers["fireline.error.reason"] == bad[message.value()]
        assert headers["fireline.error.topic"] == worker.topic("metrics")
        assert int(headers["fireline.error.offset"]) >= 0
        assert headers["fireline.error.detail"]
        assert message.key() == b"mixed-api"
    reasons = {
        h["fireline.error.reason"]: h["fireline.error.detail"]
        for h in ({k: v.decode() for k, v in m.headers()} for m in dead)
    }
    assert reasons["not_finite"] == "MetricEvent: value: Input should be a finite number, got nan"
    assert reasons["oversized"].startswith("message is 70")

    wait_for(
        lambda: slack.messages("mixed-api"), 30, "the spike among the bad events to be detected"
    )
    for reason in bad.values():
        assert (
            worker.metric(
                "fireline_events_invalid_total", topic=worker.topic("metrics"), reason=reason
            )
            == 1
        )


def test_worker__metrics_pass_promtool(worker):
    status, text = worker.get("/metrics")
    assert status == 200
    assert "fireline_events_consumed_total" in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package 'prometheus'; .ci/run installs it)"
    result = subprocess.run(  # the exit code is asserted below
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_worker__health_and_readiness(worker):
    assert worker.get("/healthz") == (200, '{"status": "ok"}')
    status, body = worker.get("/readyz")
    assert status == 200
    assert json.loads(body) == {
        "ready": True,
        "checks": {"broker": True, "topics": True, "consumer_group": True, "playbooks": True},
        "problems": [],
    }


def test_worker__bad_playbook_change_keeps_previous_set(broker, worker, slack, playbooks_dir):
    (playbooks_dir / "broken.yaml").write_text(
        "name: broken\nmatch:\n  kinds: [latency_spike]\nsteps:\n  - page: {}\n"
    )
    try:
        wait_for(
            lambda: worker.metric("fireline_playbook_reload_errors_total") >= 1,
            15,
            "the reload to be rejected",
        )
        assert (
            f"{playbooks_dir / 'broken.yaml'}:5:5: steps.0: Value error, unknown action 'page'"
            in worker.log()
        )
        assert worker.metric("fireline_playbooks_loaded") == 1
        assert worker.metric("fireline_playbooks_rejected") == 1
        produce(
            broker.bootstrap_servers,
            worker.topic("metrics"),
            latency_series("after-reload-api", 200, 25, seed=5),
            key=b"x",
        )
        wait_for(
            lambda: slack.messages("after-reload-api"),
            30,
            "the previous playbook set to still answer",
        )
        (playbooks_dir / "broken.yaml").unlink()
        wait_for(
            lambda: worker.metric("fireline_playbooks_rejected") == 0,
            15,
            "the fixed directory to load and clear fireline_playbooks_rejected",
        )
    finally:
        (playbooks_dir / "broken.yaml").unlink(missing_ok=True)


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        offsets = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_worker__stop_signal_commits_processed_offsets_and_restart_repeats_nothing(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    service = f"restart-{stop_signal.name.lower()}-api"
    env = worker_env(
        broker.url, slack, FIRELINE_WORKER__COMMIT_INTERVAL_S="30"
    )  # only the stop commits
    first = WorkerProcess(env, tmp_path / "first.log").start()
    sent = produce(
        broker.bootstrap_servers,
        first.topic("metrics"),
        latency_series(service, 200, 25, seed=6),
        key=b"r",
    )
    wait_for(lambda: slack.messages(service), 30, "the first worker to alert")
    wait_for(
        lambda: first.metric("fireline_events_consumed_total") >= sent, 10, "all events consumed"
    )
    # Stop once the Slack step has finished: a stop in the middle of it would leave its
    # request unacknowledged, and its step reconciled after the restart. The step
    # renders and uploads a chart after the message, on the playbook's owner.
    wait_for(lambda: first.metric("fireline_actions_total") >= 1, 30, "the Slack step's result")
    # ...and its audit record is out, the last thing done before the request is acknowledged.
    assert consume(broker.bootstrap_servers, first.topic("actions"), 1, 10)
    assert first.stop(stop_signal) == 0
    assert (
        committed(broker.bootstrap_servers, env["FIRELINE_APP_ID"], first.topic("metrics"), 2)
        == sent
    )
    # Every incident event too: none is redelivered to send its alert again.
    incidents = end_offsets(broker.bootstrap_servers, first.topic("incidents"))
    assert (
        committed(broker.bootstrap_servers, env["FIRELINE_APP_ID"], first.topic("incidents"), 2)
        == sum(incidents.values())
        >= 1
    )

    second = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        # Events produced after the restart are all read: none is taken for already
        # processed (the committed offset is the next one to read, not the last read).
        more = latency_series(service, 40, 0, seed=7, start=1795255300.0)
        produce(broker.bootstrap_servers, second.topic("metrics"), more, key=b"r")
        wait_for(
            lambda: second.metric("fireline_events_consumed_total") >= len(more),
            15,
            f"all {len(more)} new events",
        )
        # One partition, read in order: a redelivered old event would have been
        # counted before these.
        assert second.metric("fireline_events_consumed_total") == len(more)
        assert len(slack.messages(service)) == 1
    finally:
        second.stop()


def test_run__bad_setting_fails_at_start_naming_it(broker, slack, tmp_path):
    env = worker_env(broker.url, slack, FIRELINE_BROKER_URL="localhost:9092")
    result = subprocess.run(  # the exit code is asserted below
        [*WorkerProcess(env, tmp_path / "x.log").command()],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        "broker_url (FIRELINE_BROKER_URL): Value error, expected kafka://host:port"
        in result.stderr.decode()
    )


def test_worker__slack_errors_are_audited_and_the_worker_goes_on(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path
) -> None:
    wrong_token = "xoxb-wrong-token-never-logged"
    env = worker_env(broker.url, slack, FIRELINE_SLACK_TOKEN=wrong_token)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        series = latency_series("rejected-api", 200, 25, seed=8)
        produce(broker.bootstrap_servers, worker.topic("metrics"), series, key=b"x")
        audit = consume(broker.bootstrap_servers, worker.topic("actions"), 1, 30)
        assert len(audit) == 1
        record = json.loads(audit[0].value())
        assert (record["action"], record["ok"], record["transition"]) == ("slack", False, "opened")
        assert (
            record["detail"] == "Slack rejected chat.postMessage to #fireline-alerts: invalid_auth"
        )
        assert audit[0].key() == record["incident_id"].encode()
        assert worker.metric("fireline_actions_total", action="slack", outcome="failed") == 1
        assert worker.get("/healthz")[0] == 200
        assert wrong_token not in worker.log()
        assert wrong_token not in audit[0].value().decode()
    finally:
        worker.stop()


def test_worker__successful_action_is_audited(broker, worker, slack):
    incident_id = json.loads(spike_incident(broker, worker, slack, "audited-api", seed=9).value())[
        "id"
    ]
    audit = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        1,
        20,
        where=lambda m: m.key() == incident_id.encode(),
    )
    record = json.loads(audit[0].value())
    assert (record["action"], record["ok"], record["target"]) == ("slack", True, "#fireline-alerts")
    assert record["detail"].startswith("posted ")


def test_worker__commits_pass_transaction_markers(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path
) -> None:
    # Each transaction leaves a commit marker at an offset no consumer ever sees;
    # unless those gaps are marked done, Faust's commit position sticks at the first.
    env = worker_env(broker.url, slack, FIRELINE_PARTITIONS="1")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    topic = worker.topic("metrics")
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "transactional.id": unique("tx")}
    )
    try:
        producer.init_transactions()
        sent = 0
        for _ in range(20):
            producer.begin_transaction()
            for _ in range(5):
                producer.produce(
                    topic, value=metric_event(1795255200.0 + sent, 48.0, "tx-api"), key=b"k"
                )
                sent += 1
            producer.commit_transaction()
            time.sleep(0.25)  # separate fetches, so markers fall between batches too
        wait_for(lambda: worker.metric("fireline_events_consumed_total") >= sent, 20, "all events")
        reader = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": unique("wm")})
        try:
            _, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        finally:
            reader.close()
        assert high > sent  # the markers took offsets too
        # Commits run every 0.5 s; without gap handling each passes only one marker.
        group = env["FIRELINE_APP_ID"]
        wait_for(
            lambda: committed(broker.bootstrap_servers, group, topic, 1) >= high - 1,
            3,
            f"the commit to pass every marker (log end {high})",
        )
    finally:
        producer.close()
        worker.stop()


def test_worker__huge_event_is_dead_lettered_truncated_and_the_worker_goes_on(
    broker, worker, slack
):
    huge = (
        b'{"timestamp": 1795255200, "name": "latency_ms", "value": 1, "pad": "'
        + b"x" * 1_500_000
        + b'"}'
    )
    produce(
        broker.bootstrap_servers,
        worker.topic("metrics"),
        [huge],
        key=b"huge",
        **{"message.max.bytes": 2_000_000},
    )
    (dead,) = consume(
        broker.bootstrap_servers,
        worker.topic("dead_letter"),
        1,
        30,
        where=lambda m: m.key() == b"huge",
    )
    headers = {k: v.decode() for k, v in dead.headers()}
    assert headers["fireline.error.reason"] == "oversized"
    assert headers["fireline.error.truncated"] == str(len(huge))
    assert dead.value() == huge[: 512 * 1024]
    spike_incident(broker, worker, slack, "after-huge-api", seed=10)  # still processing


def test_worker__slack_disconnects_are_failed_actions_not_crashes(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    dead_slack = SlackServer(disconnect=True).start()
    worker = WorkerProcess(worker_env(broker.url, dead_slack), tmp_path / "worker.log").start()
    try:
        series = latency_series("disconnect-api", 200, 25, seed=11)
        produce(broker.bootstrap_servers, worker.topic("metrics"), series, key=b"d")
        (audit,) = consume(broker.bootstrap_servers, worker.topic("actions"), 1, 30)
        record = json.loads(audit.value())
        assert (record["action"], record["ok"]) == ("slack", False)
        assert record["detail"].startswith(f"Slack unreachable at {dead_slack.base_url}: ")
        # The step stops at its first call, the look for a root already posted: slack-sdk
        # retries a dropped connection once, aiohttp re-sends a dropped GET once.
        assert [c.method for c in dead_slack.calls] == ["conversations.history"] * 4
        assert worker.metric("fireline_actions_total", action="slack", outcome="failed") == 1
        more = latency_series("disconnect-api-2", 200, 25, seed=12)
        produce(broker.bootstrap_servers, worker.topic("metrics"), more, key=b"d2")
        wait_for(
            lambda: worker.metric("fireline_actions_total", action="slack", outcome="failed") == 2,
            30,
            "the playbooks agent to handle the next incident too",
        )
    finally:
        worker.stop()
        dead_slack.stop()

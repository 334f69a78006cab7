"""Incidents end to end: a real broker, real worker processes, a Slack stand-in, the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.kafka.broker import EmbeddedBroker, free_port
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    end_offsets,
    metric_event,
    produce,
    wait_for,
    wait_processed,
    worker_env,
)

pytestmark = pytest.mark.integration

TOKEN = "api-token-for-tests"
EVERY_CHANGE = """\
name: every-change
match:
  kinds: [latency_spike]
  transitions: [opened, updated, escalated, acknowledged, resolved, reopened]
steps:
  - slack: {}
"""
FAST_LIFECYCLE = {
    "FIRELINE_API_TOKEN": TOKEN,
    "FIRELINE_INCIDENTS__QUIET_PERIOD_S": "2",
    "FIRELINE_INCIDENTS__SIGNAL_REFRESH_S": "1",
    "FIRELINE_INCIDENTS__SIGNAL_EXPIRY_S": "30",
    "FIRELINE_INCIDENTS__TICK_S": "0.3",
    "FIRELINE_INCIDENTS__FLAP_THRESHOLD": "2",
}


@pytest.fixture(scope="module")
def playbooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "every-change.yaml").write_text(EVERY_CHANGE)
    return directory


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    slack: SlackServer,
    playbooks_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = worker_env(broker.url, slack, playbooks_dir, **FAST_LIFECYCLE)
    process = WorkerProcess(env, log).start()
    yield process
    process.stop()


def samples(
    service: str, pattern: list[tuple[int, float]], seed: int, name: str = "latency_ms"
) -> list[bytes]:
    """Runs of (count, mean latency) as one series of samples 0.1 s apart."""
    rng = np.random.default_rng(seed)
    values = [v for count, mean in pattern for v in rng.normal(mean, mean * 0.04, count)]
    return [
        metric_event(1795255200.0 + i * 0.1, round(float(v), 2), service, name)
        for i, v in enumerate(values)
    ]


def send(broker: EmbeddedBroker, worker: WorkerProcess, events: list[bytes], key: str) -> None:
    produce(broker.bootstrap_servers, worker.topic("metrics"), events, key=key.encode())


def incident_events(
    broker: EmbeddedBroker, worker: WorkerProcess, service: str, expected: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The incident events about ``service`` (at least ``expected``, if they come in time)."""
    found = consume(
        broker.bootstrap_servers,
        worker.topic("incidents"),
        expected,
        timeout_s,
        where=lambda m: f'"service":"{service}"'.encode() in m.value(),
    )
    return sorted((json.loads(m.value()) for m in found), key=lambda e: e["revision"])


def wait_for_transition(
    broker: EmbeddedBroker, worker: WorkerProcess, service: str, transition: str, timeout_s: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = incident_events(broker, worker, service, 100, 1.0)
        if any(e["transition"] == transition for e in events):
            return events
    raise AssertionError(f"no {transition} event for {service}; got {events}")


def test_dedup__a_repeat_updates_the_incident_and_it_auto_resolves(broker, worker, slack):
    service = "dedup-api"
    pattern = [(200, 48.0), (25, 420.0), (30, 48.0), (25, 420.0), (60, 48.0)]
    send(broker, worker, samples(service, pattern, seed=1), service)
    events = wait_for_transition(broker, worker, service, "resolved", 30)
    assert [(e["transition"], e["revision"], e["count"]) for e in events] == [
        ("opened", 1, 1),
        ("updated", 2, 2),
        ("resolved", 3, 2),
    ]
    assert len({e["id"] for e in events}) == 1
    assert events[-1]["resolution"] == "recovered"
    assert len(events[0]["evidence"][0]["points"]) > 100  # the series up to the spike
    wait_for(lambda: len(slack.messages(service)) == 3, 10, "three Slack messages")
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    assert len(slack.messages(service)) == 3


def test_correlation__two_series_of_one_model_make_one_incident(broker, worker, slack):
    service = "grouped-api"
    pattern = [(200, 48.0), (25, 420.0), (60, 48.0)]
    events = samples(service, pattern, seed=2) + samples(
        service, pattern, seed=3, name="latency_p99_ms"
    )
    send(broker, worker, events, service)
    found = wait_for_transition(broker, worker, service, "resolved", 30)
    assert [e["transition"] for e in found] == ["opened", "updated", "resolved"]
    assert len({e["id"] for e in found}) == 1
    resolved = found[-1]
    assert len(resolved["fingerprints"]) == 2
    assert {s["series"].split("{")[0] for s in resolved["signals"]} == {
        "latency_ms",
        "latency_p99_ms",
    }


def test_flapping__notifications_are_held_back(broker, worker, slack):
    service = "flappy-api"
    pattern = [(200, 48.0)] + [(12, 420.0), (40, 48.0)] * 4
    send(broker, worker, samples(service, pattern, seed=4), service)
    events = wait_for_transition(broker, worker, service, "resolved", 30)
    assert len({e["id"] for e in events}) == 1
    assert [e["flapping"] for e in events[:4]] == [False, False, True, True]
    notified = [e for e in events if not e["flapping"] and e["silenced_by"] is None]
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    assert len(slack.messages(service)) == len(notified) == 2


def test_silence__matching_incidents_are_recorded_but_notify_nobody(broker, worker, slack):
    service = "maintenance-api"
    body = {"matchers": {"service": "maint*"}, "duration": "1h", "comment": "planned work"}
    assert worker.request("POST", "/silences", body)[0] == 401
    status, error = worker.request(
        "POST", "/silences", {**body, "matchers": {"colour": "x"}}, TOKEN
    )
    assert status == 400 and "unknown matcher 'colour'" in error["error"]
    status, silence = worker.request("POST", "/silences", body, TOKEN)
    assert status == 201 and silence["id"].startswith("sil-")
    status, listed = worker.request("GET", "/silences?active=true", token=TOKEN)
    assert silence["id"] in [s["id"] for s in listed["silences"]]
    wait_for(lambda: worker.metric("fireline_silences_active") == 1, 5, "the silences gauge")

    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=5), service)
    (opened,) = incident_events(broker, worker, service, 1, 30)
    assert opened["silenced_by"] == silence["id"]
    status, shown = worker.request("GET", f"/incidents/{opened['id']}", token=TOKEN)
    assert (status, shown["notify"]) == (200, False)
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    assert slack.messages(service) == []

    assert worker.request("DELETE", f"/silences/{silence['id']}", token=TOKEN)[0] == 200
    status, listed = worker.request("GET", "/silences", token=TOKEN)
    assert silence["id"] not in [s["id"] for s in listed["silences"]]
    wait_for(lambda: worker.metric("fireline_silences_active") == 0, 5, "the silences gauge")
    assert worker.request("DELETE", f"/silences/{silence['id']}", token=TOKEN)[0] == 404
    # The open incident notifies again once its silence is gone.
    updated = wait_for_transition(broker, worker, service, "updated", 10)[-1]
    assert updated["silenced_by"] is None
    wait_for(lambda: len(slack.messages(service)) == 1, 10, "the un-silenced update in Slack")


def test_api__list_show_acknowledge_resolve(broker, worker, slack):
    service = "api-handled-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=6), service)
    (opened,) = incident_events(broker, worker, service, 1, 30)
    incident_id = opened["id"]
    read = f"/incidents/{incident_id}"
    assert worker.request("GET", read)[0] == 401  # tokens are configured: reads need one
    wait_for(lambda: worker.request("GET", read, token=TOKEN)[0] == 200, 10, "the read model")
    status, listing = worker.request(
        "GET", f"/incidents?status=open&model={service}*&since=1795255000", token=TOKEN
    )
    assert status == 200 and [i["id"] for i in listing["incidents"]] == [incident_id]
    assert worker.request("GET", "/incidents?status=sleeping", token=TOKEN)[0] == 400
    status, missing = worker.request("GET", "/incidents/inc-nope", token=TOKEN)
    assert (status, missing) == (404, {"error": "no incident inc-nope"})

    wait_for(
        lambda: worker.metric("fireline_incidents_open", severity="critical") >= 1,
        5,
        "the open-incidents gauge",
    )
    ack = f"/incidents/{incident_id}/ack"
    assert worker.request("POST", ack, {"by": "mallory"})[0] == 401
    assert worker.request("POST", ack, {"by": "mallory"}, "wrong-token")[0] == 401
    # Who acknowledged is the token's name (the single admin token is "api"), never the body's.
    status, acked = worker.request("POST", ack, {"by": "mallory"}, TOKEN)
    assert (status, acked["status"], acked["acknowledged_by"]) == (200, "acknowledged", "api")
    assert worker.request("POST", ack, {}, TOKEN)[0] == 409

    status, resolved = worker.request("POST", f"/incidents/{incident_id}/resolve", {}, TOKEN)
    assert (status, resolved["status"], resolved["resolution"]) == (200, "resolved", "manual")
    assert worker.request("POST", f"/incidents/{incident_id}/resolve", {}, TOKEN)[0] == 409
    wait_for(lambda: len(slack.messages(service)) == 3, 10, "opened, acknowledged, resolved")
    assert "Acknowledged by api" in slack.messages(service)[1]
    assert "mallory" not in " ".join(slack.messages(service))


def cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env["FIRELINE_API_TOKEN"] = TOKEN
    url = f"http://127.0.0.1:{worker.port}"
    command = [sys.executable, "-m", "agents.cli.main", args[0], "--url", url, *args[1:]]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cli__incidents_and_silences(broker, worker, slack):
    service = "cli-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=7), service)
    (opened,) = incident_events(broker, worker, service, 1, 30)
    # Each try starts a CLI process (its imports take seconds on a loaded machine).
    wait_for(lambda: opened["id"] in cli(worker, "incidents", "list").stdout, 40, "the CLI list")
    # Acknowledged at once: with no new samples its signal expires 30 s after it opened
    # and the incident resolves (an ack then gets a 409), and each CLI call takes
    # seconds on a loaded machine.
    acked = cli(worker, "incidents", "ack", opened["id"])
    assert acked.returncode == 0 and "acknowledged" in acked.stdout, acked.stderr
    listed = cli(worker, "incidents", "list", "--model", f"{service}*")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if opened["id"] in line]
    assert "Latency spike on cli-api" in row
    assert row.split()[1] in ("acknowledged", "resolved"), row  # resolved: its signal expired
    shown = cli(worker, "incidents", "show", opened["id"])
    assert json.loads(shown.stdout)["id"] == opened["id"]
    again = cli(worker, "incidents", "ack", opened["id"])
    assert again.returncode == 2 and "409 incident" in again.stderr

    added = cli(worker, "silence", "add", "model=cli-*", "--duration", "10m", "--comment", "x")
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split(":")[0]
    assert silence_id in cli(worker, "silence", "list", "--active").stdout
    assert cli(worker, "silence", "remove", silence_id).returncode == 0
    assert silence_id not in cli(worker, "silence", "list").stdout
    bad = cli(worker, "silence", "add", "nonsense")
    assert bad.returncode == 2 and "expected FIELD=GLOB" in bad.stderr


def test_restart__an_open_incident_continues_and_notifies_once(broker, slack, tmp_path):
    """Stop the worker while an incident is open; the next one continues it from the tables."""
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "every-change.yaml").write_text(EVERY_CHANGE)
    # The restarted worker's detector resumes from its latest checkpoint. If that was
    # taken after the spike, the detector is still raised: the normal samples clear it
    # (the incident resolves, recovered) and the new spike reopens the same incident.
    # If it was taken before the spike, the new spike raises it again while the first
    # signal is still on (30 s expiry): the same incident is updated. Either way one
    # incident, continued in the first worker's thread, one message per transition.
    env = worker_env(broker.url, slack, tmp_path / "playbooks", **FAST_LIFECYCLE)
    service = "restarted-api"
    first = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        send(broker, first, samples(service, [(200, 48.0), (25, 420.0)], seed=8), service)
        (opened,) = incident_events(broker, first, service, 1, 30)
        wait_for(lambda: first.metric("fireline_actions_total") >= 1, 45, "the Slack step")
        # ...and its audit record is out, the last thing done before the event is acknowledged.
        assert consume(broker.bootstrap_servers, first.topic("actions"), 1, 10)
    finally:
        assert first.stop() == 0

    second = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        send(
            broker,
            second,
            samples(service, [(200, 48.0), (25, 420.0), (60, 48.0)], seed=9),
            service,
        )
        events: list[dict[str, Any]] = []

        def second_spike_resolved() -> bool:
            events[:] = incident_events(broker, second, service, 100, 1.0)
            transitions = [e["transition"] for e in events]
            return transitions[-1:] == ["resolved"] and bool(
                {"updated", "reopened"} & {*transitions}
            )

        wait_for(second_spike_resolved, 60, "the second spike's incident event, then resolved")
        wait_for(lambda: len(slack.messages(service)) >= len(events), 30, "a message each")
    finally:
        assert second.stop() == 0
    assert [e["transition"] for e in events] in (
        ["opened", "updated", "resolved"],  # resumed from before the spike
        ["opened", "resolved", "reopened", "resolved"],  # resumed raised, cleared, raised
    )
    assert {e["id"] for e in events} == {opened["id"]}
    messages = slack.messages(service)
    assert len(messages) == len(events), messages  # one per transition: none sent twice
    assert sum("[CRITICAL]" in m for m in messages) == 1
    # The restarted worker replied in the first worker's thread and rewrote its root:
    # the thread was recorded on the chat-threads topic and replayed at start.
    root, *replies = [c for c in slack.called("chat.postMessage") if service in c["text"]]
    assert "thread_ts" not in root and len(replies) == len(events) - 1
    updates = [c for c in slack.called("chat.update") if service in c["text"]]
    assert updates and {r["thread_ts"] for r in replies} == {u["ts"] for u in updates}


def test_two_workers__one_incident_and_both_serve_it(broker, slack, tmp_path):
    """A subject's detections all land in one partition: one owner, one incident."""
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "every-change.yaml").write_text(EVERY_CHANGE)
    env = worker_env(broker.url, slack, tmp_path / "playbooks", **FAST_LIFECYCLE)
    first = WorkerProcess(env, tmp_path / "first.log").start()
    second_env = {**env, "FIRELINE_HTTP_PORT": str(free_port())}
    second = WorkerProcess(second_env, tmp_path / "second.log").start()
    try:
        wait_for(lambda: first.get("/readyz")[0] == 200, 30, "the rebalanced first worker")
        service = "shared-api"
        for seed, key in ((10, "a"), (11, "b")):  # both metric partitions, both workers
            events = samples(service, [(200, 48.0), (25, 420.0)], seed=seed)
            produce(broker.bootstrap_servers, first.topic("metrics"), events, key=key.encode())
        # The same series on two partitions: two detectors raise, one incident is opened
        # and the second raise folds into it. Wait for that fold (and its Slack reply),
        # then check nothing else was opened or sent.
        events = wait_for_transition(broker, first, service, "updated", 60)
        wait_for(lambda: len(slack.messages(service)) >= 2, 30, "the root and the update's reply")
        assert [(e["transition"], e["count"]) for e in events] == [("opened", 1), ("updated", 2)]
        assert len({e["id"] for e in events}) == 1
        assert len(slack.messages(service)) == 2
        opened = events[:1]
        for worker in (first, second):
            wait_for(
                lambda w=worker: (
                    w.request("GET", f"/incidents/{opened[0]['id']}", token=TOKEN)[0] == 200
                ),
                10,
                "the incident in every worker's view",
            )
    finally:
        second.stop()
        first.stop()


def test_prediction_drift_after_a_deploy_names_the_deploy_as_likely_cause(broker, worker):
    rng = np.random.default_rng(12)
    model = "drifty"

    def prediction(i: int, version: str, shift: float) -> bytes:
        body = {
            "timestamp": 1795255200.0 + i * 0.1,
            "model": model,
            "model_version": version,
            "prediction_id": f"d-{i}",
            "features": {"amount": float(rng.normal(100 + shift, 10)), "country": "DE"},
            "prediction": float(rng.uniform()),
        }
        return json.dumps(body).encode()

    # v7 serves, v8 goes live, warms up (500), captures its reference (2000), then drifts.
    events = [prediction(i, "7", 0.0) for i in range(100)]
    events += [prediction(i, "8", 0.0) for i in range(100, 2600)]
    events += [prediction(i, "8", 20.0) for i in range(2600, 3600)]
    produce(broker.bootstrap_servers, worker.topic("predictions"), events, key=model.encode())
    found = consume(
        broker.bootstrap_servers,
        worker.topic("incidents"),
        1,
        60,
        where=lambda m: b'"model":"drifty"' in m.value(),
    )
    assert found, "no incident for the drifting model"
    opened = json.loads(found[0].value())
    assert opened["transition"] == "opened"
    assert opened["kind"] in {"covariate_drift", "multivariate_drift", "data_quality"}
    assert (opened["model"], opened["model_version"]) == ("drifty", "8")
    assert [(c["version"], c["previous_version"]) for c in opened["changes"]] == [("8", "7")]
    assert opened["likely_cause"].startswith("drifty v8 went live (was v7)")


def test_restart__detectors_resume_their_baselines_from_the_table(broker, slack, tmp_path):
    """25 spiking points right after a restart: only a restored detector can flag them
    (a fresh one spends its first 30 points warming up)."""
    env = worker_env(
        broker.url, slack, None, FIRELINE_DETECTION__CHECKPOINT_S="0.5", **FAST_LIFECYCLE
    )
    service = "resumed-api"
    first = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        normal = samples(service, [(200, 48.0)], seed=13)
        send(broker, first, normal, service)
        wait_for(
            lambda: first.metric("fireline_events_consumed_total") >= len(normal), 20, "consumed"
        )
        changelog = f"{env['FIRELINE_APP_ID']}-detector-state-changelog"
        wait_for(
            lambda: sum(end_offsets(broker.bootstrap_servers, changelog).values()) > 0,
            10,
            "a checkpoint of the detector",
        )
    finally:
        assert first.stop() == 0
    assert "checkpointed" in first.log()

    second = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        spike = [
            metric_event(1795255200.0 + (200 + i) * 0.1, 420.0 + i, service) for i in range(25)
        ]
        send(broker, second, spike, service)
        (opened,) = incident_events(broker, second, service, 1, 30)
    finally:
        second.stop()
    assert opened["transition"] == "opened"
    assert 40 < opened["signals"][0]["baseline"] < 56  # the baseline learnt before the restart

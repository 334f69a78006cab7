"""Playbooks end to end: approval gating, dry-run and durable step idempotency."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    end_offsets,
    produce,
    wait_for,
    wait_processed,
    worker_env,
)
from tests.integration.test_incidents import samples

pytestmark = pytest.mark.integration

TOKEN = "approver-token"
GATED = """\
name: gated-rollback
match: {kinds: [latency_spike], services: ["gated-*"]}
steps:
  - slack: {mention: "before-approval"}
  - slack: {mention: "after-approval {{ incident.model }}"}
    require_approval: true
"""
VERIFY = """\
name: verify-remediation
match: {kinds: [latency_spike], services: ["verify-*"]}
steps:
  - slack: {mention: "remediating {{ incident.service }}"}
verify:
  resolved_within: 2s
  on_unverified:
    - slack: {mention: "unverified-page {{ incident.service }}"}
"""
ESCALATE = """\
name: escalate-on-failure
match: {kinds: [latency_spike], services: ["escalate-*"]}
steps:
  - retrain: {provider: command, argv: ["false"]}
    on_failure: escalate
"""
LIMITED = """\
name: limited
match: {kinds: [latency_spike], services: ["limited-*"]}
cooldown: 1h
max_runs_per_hour: 1
steps:
  - slack: {mention: "limited-run {{ incident.service }}"}
"""
DRY = """\
name: dry-page
mode: dry-run
match: {kinds: [latency_spike], services: ["dry-*"]}
steps:
  - slack: {mention: "dry-would-page {{ incident.service }}"}
"""


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "gated.yaml").write_text(GATED)
    (directory / "dry.yaml").write_text(DRY)
    (directory / "verify.yaml").write_text(VERIFY)
    (directory / "escalate.yaml").write_text(ESCALATE)
    (directory / "limited.yaml").write_text(LIMITED)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = worker_env(
        broker.url, slack, directory, FIRELINE_API_TOKEN=TOKEN, FIRELINE_INCIDENTS__TICK_S="0.5"
    )
    process = WorkerProcess(env, log).start()
    yield process
    process.stop()


def sent(slack: SlackServer, prefix: str) -> list[str]:
    """Messages a step posted (its mention comes first), not the announcements quoting it."""
    return [m for m in slack.messages() if m.startswith(prefix)]


def spike(broker: EmbeddedBroker, worker: WorkerProcess, service: str, seed: int) -> None:
    events = samples(service, [(200, 48.0), (25, 420.0)], seed=seed)
    produce(broker.bootstrap_servers, worker.topic("metrics"), events, key=service.encode())


def audit(broker: EmbeddedBroker, worker: WorkerProcess, playbook: str, expected: int) -> list:
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        expected,
        20,
        where=lambda m: f'"playbook":"{playbook}"'.encode() in m.value(),
    )
    return [json.loads(m.value()) for m in found]


def test_approval__the_gated_step_runs_only_after_a_human_approves(broker, worker, slack):
    spike(broker, worker, "gated-api", seed=21)
    wait_for(lambda: slack.messages("[APPROVAL NEEDED]"), 30, "the approval request in Slack")
    assert len(sent(slack, "before-approval")) == 1
    assert sent(slack, "after-approval") == []

    def waiting() -> list[dict]:
        _, listed = worker.request("GET", "/approvals?status=pending", token=TOKEN)
        return [a for a in listed["approvals"] if a["playbook"] == "gated-rollback"]

    wait_for(lambda: bool(waiting()), 10, "the request in the worker's view")  # announced first
    (pending,) = waiting()
    assert pending["params"]["mention"] == "after-approval gated-api-model"
    assert pending["id"] in slack.messages("[APPROVAL NEEDED]")[0]

    path = f"/approvals/{pending['id']}/approve"
    assert worker.request("POST", path, {"by": "mallory"})[0] == 401
    # The single admin token (FIRELINE_API_TOKEN) is named "api"; the body's "by" is ignored.
    status, decided = worker.request("POST", path, {"by": "alice"}, TOKEN)
    assert (status, decided["status"], decided["decided_by"]) == (200, "approved", "api")
    wait_for(lambda: sent(slack, "after-approval"), 20, "the approved step in Slack")
    assert worker.request("POST", path, {}, TOKEN)[0] == 409
    records = audit(broker, worker, "gated-rollback", 3)
    outcomes = [(r["outcome"], r["approved_by"]) for r in records]
    assert outcomes == [("ok", None), ("pending_approval", None), ("ok", "api")]
    wait_processed(broker.bootstrap_servers, worker, "incidents", "approvals", "action_requests")
    assert len(sent(slack, "after-approval")) == 1


def test_dry_run__records_and_announces_what_would_run_and_runs_nothing(broker, worker, slack):
    spike(broker, worker, "dry-api", seed=22)
    wait_for(lambda: slack.messages("[DRY-RUN] playbook dry-page"), 30, "the dry-run summary")
    summary = slack.messages("[DRY-RUN] playbook dry-page")[0]
    assert "dry-would-page dry-api" in summary
    assert sent(slack, "dry-would-page") == []
    (record,) = audit(broker, worker, "dry-page", 1)
    assert (
        record["outcome"] == "dry_run" and record["params"]["mention"] == "dry-would-page dry-api"
    )


def test_cli__approvals_list_and_reject(broker, worker, slack, tmp_path):
    import os
    import subprocess
    import sys

    spike(broker, worker, "gated-cli", seed=23)
    wait_for(
        lambda: any("gated-cli" in m for m in slack.messages("[APPROVAL NEEDED]")),
        30,
        "the approval request",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env["FIRELINE_API_TOKEN"] = TOKEN
    base = [
        sys.executable,
        "-m",
        "agents.cli.main",
        "approvals",
        "--url",
        f"http://127.0.0.1:{worker.port}",
    ]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def rows() -> list[str]:
        listed = cli("list", "--status", "pending")
        return [row for row in listed.stdout.splitlines() if "gated-cli" in row]

    wait_for(lambda: bool(rows()), 15, "the request in the worker's view")
    (line,) = rows()
    approval_id = line.split()[0]
    rejected = cli("reject", approval_id)
    assert rejected.returncode == 0 and "rejected by api" in rejected.stdout, rejected.stderr
    wait_for(
        lambda: (
            ("rejected", "api")
            in [
                (r["outcome"], r["approved_by"]) for r in audit(broker, worker, "gated-rollback", 6)
            ]
        ),
        20,
        "the rejection's audit record",
    )
    wait_processed(broker.bootstrap_servers, worker, "incidents", "approvals", "action_requests")
    assert not any("gated-cli" in m for m in sent(slack, "after-approval"))


def test_verify__an_incident_still_open_at_the_deadline_runs_on_unverified(broker, worker, slack):
    spike(broker, worker, "verify-api", seed=24)  # it never recovers
    wait_for(lambda: sent(slack, "remediating verify-api"), 30, "the remediation")
    wait_for(lambda: sent(slack, "unverified-page verify-api"), 15, "the unverified page")
    records = audit(broker, worker, "verify-remediation", 3)
    assert [(r["step"], r["outcome"]) for r in records] == [
        ("slack", "ok"),
        ("verify", "failed"),
        ("slack", "ok"),
    ]
    assert records[1]["detail"].startswith("unverified: still open 2 s after the playbook ran")
    # The deadline's record (on the approvals topic) handled, and all else published by now.
    wait_processed(broker.bootstrap_servers, worker, "incidents", "approvals", "action_requests")
    assert len(sent(slack, "unverified-page verify-api")) == 1


def test_restart__a_recorded_step_is_not_repeated_when_its_event_is_redelivered(
    broker, slack, tmp_path
):
    """Kill the worker after the step ran but before any offset commit: the next worker
    gets the incident event again, and the steps table (from its changelog) says done."""
    import signal

    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "once.yaml").write_text(
        "name: once\nmatch: {kinds: [latency_spike], services: [once-*]}\n"
        'steps:\n  - slack: {mention: "once-only {{ incident.service }}"}\n'
    )
    env = worker_env(broker.url, slack, directory, FIRELINE_WORKER__COMMIT_INTERVAL_S="60")
    first = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        spike(broker, first, "once-api", seed=25)
        wait_for(lambda: sent(slack, "once-only once-api"), 30, "the step's message")
        wait_for(lambda: first.metric("fireline_actions_total") >= 1, 10, "the step recorded")
        steps = f"{env['FIRELINE_APP_ID']}-playbook-steps-changelog"
        wait_for(
            lambda: sum(end_offsets(broker.bootstrap_servers, steps).values()) > 0,
            10,
            "the step's record in the steps table's changelog",
        )
    finally:
        first.stop(signal.SIGKILL)  # no commit, no graceful anything
    # The second commits often: its committed offsets say what it has handled.
    second = WorkerProcess(
        {**env, "FIRELINE_WORKER__COMMIT_INTERVAL_S": "0.5"}, tmp_path / "second.log"
    ).start()
    try:
        wait_for(
            lambda: second.metric("fireline_events_consumed_total") >= 225,
            30,
            "the redelivered metric events",
        )
        # Past the redelivered incident events too: their playbooks have run (or not).
        wait_processed(
            broker.bootstrap_servers,
            second,
            "metrics",
            "detections",
            "incidents",
            "action_requests",
        )
    finally:
        second.stop()
    assert len(sent(slack, "once-only once-api")) == 1


def test_on_failure_escalate__the_incident_becomes_critical_and_escalated(broker, worker, slack):
    events = samples("escalate-api", [(200, 48.0), (25, 100.0)], seed=26)  # a 2x spike: warning
    produce(broker.bootstrap_servers, worker.topic("metrics"), events, key=b"escalate-api")
    found = consume(
        broker.bootstrap_servers,
        worker.topic("incidents"),
        2,
        30,
        where=lambda m: b'"service":"escalate-api"' in m.value(),
    )
    history = sorted((json.loads(m.value()) for m in found), key=lambda e: e["revision"])
    assert [(e["transition"], e["severity"]) for e in history] == [
        ("opened", "warning"),
        ("escalated", "critical"),
    ]
    assert history[1]["labels"]["escalated_by"] == "playbook escalate-on-failure"


def test_guardrails__the_hourly_limit_holds_a_second_incident_back(broker, worker, slack):
    spike(broker, worker, "limited-one", seed=27)
    wait_for(lambda: sent(slack, "limited-run limited-one"), 30, "the first run")
    spike(broker, worker, "limited-two", seed=28)
    records = audit(broker, worker, "limited", 2)
    assert [(r["outcome"], r["detail"]) for r in records] == [
        ("ok", records[0]["detail"]),
        ("skipped", "rate limit: 1 runs in the last hour"),
    ]
    assert sent(slack, "limited-run limited-two") == []

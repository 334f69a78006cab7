"""Slack buttons on a real worker: signed presses acknowledge, resolve, silence, approve and
reject; unsigned, forged or stale requests get 401; a press on a resolved incident changes
nothing."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.kafka.broker import EmbeddedBroker
from agents.slack.signature import slack_signature
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    wait_for,
    wait_processed,
    worker_env,
)
from tests.integration.test_incidents import (
    EVERY_CHANGE,
    FAST_LIFECYCLE,
    TOKEN,
    samples,
    send,
    wait_for_transition,
)

pytestmark = pytest.mark.integration

SIGNING_SECRET = "slack-signing-secret-for-tests"


class Deployer:
    """A loopback stand-in for a model deployer's rollback endpoint; records requests."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, object]] = []
        deployer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                deployer.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rollback"


@pytest.fixture(scope="module")
def deployer() -> Iterator[Deployer]:
    server = Deployer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


GATED_ROLLBACK = """\
name: gated-rollback
match: {{kinds: [latency_spike], services: ["rollback-*"]}}
steps:
  - rollback: {{provider: http, url: "{url}", to_version: "6"}}
    require_approval: true
"""


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    slack: SlackServer,
    deployer: Deployer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "every-change.yaml").write_text(EVERY_CHANGE)
    (directory / "gated-rollback.yaml").write_text(GATED_ROLLBACK.format(url=deployer.url))
    env = worker_env(
        broker.url,
        slack,
        directory,
        FIRELINE_SLACK_SIGNING_SECRET=SIGNING_SECRET,
        FIRELINE_SLACK_APPROVERS='["U123"]',  # alice
        **FAST_LIFECYCLE,
    )
    process = WorkerProcess(env, Path(tmp_path_factory.mktemp("worker")) / "worker.log").start()
    yield process
    process.stop()


def press(
    worker: WorkerProcess,
    action_id: str,
    secret: str = SIGNING_SECRET,
    age_s: float = 0,
    response_url: str | None = None,
    user: dict[str, str] | None = None,
) -> tuple[int, dict[str, object]]:
    payload: dict[str, object] = {
        "type": "block_actions",
        "user": user or {"id": "U123", "username": "alice"},
        "actions": [{"action_id": action_id, "value": action_id.split(":", 1)[1]}],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time() - age_s))
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/slack/interactions",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": slack_signature(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def shown(worker: WorkerProcess, incident_id: str) -> dict[str, Any]:
    """The incident as the worker's API shows it (its view); {} until the view has it."""
    status, body = worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)
    return body if status == 200 else {}


def open_incident(
    broker: EmbeddedBroker, worker: WorkerProcess, slack: SlackServer, events: list[bytes]
) -> str:
    """Send ``events`` (a latency spike of one service); the id of the incident it opened, once
    its root message and evidence chart are in Slack and the worker's view shows it (the chat
    comes first)."""
    service = json.loads(events[0])["labels"]["service"]
    send(broker, worker, events, service)
    [opened] = wait_for_transition(broker, worker, service, "opened", 40)
    wait_for(lambda: slack.messages(service), 20, "the root message")
    wait_for(
        lambda: any(m == "files.completeUploadExternal" for m, _ in calls_about(slack, service)),
        20,
        "the evidence chart in the thread",
    )
    wait_for(lambda: bool(shown(worker, opened["id"])), 15, "the incident in the worker's view")
    return str(opened["id"])


def root_updates(slack: SlackServer, incident_id: str) -> list[dict[str, Any]]:
    """The chat.update calls that rewrote the incident's root (its context names the id)."""
    return [c for c in slack.called("chat.update") if incident_id in json.dumps(c.get("blocks"))]


def approval_updates(slack: SlackServer, approval_id: str) -> list[dict[str, Any]]:
    """The chat.update calls that rewrote an approval request's message."""
    return [c for c in slack.called("chat.update") if approval_id in c.get("text", "")]


def calls_about(slack: SlackServer, *needles: str) -> list[tuple[str, str]]:
    """Every recorded Web API call whose body mentions one of ``needles``."""
    with slack.lock:
        calls = [(c.method, json.dumps(c.body, sort_keys=True)) for c in slack.calls]
    return [(method, body) for method, body in calls if any(n in body for n in needles)]


def audit(
    broker: EmbeddedBroker, worker: WorkerProcess, incident_id: str, playbook: str, expected: int
) -> list[dict[str, Any]]:
    """A playbook's action audit records (``fireline.actions``) about one incident, in order."""
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        expected,
        20,
        where=lambda m: (
            f'"incident_id":"{incident_id}"'.encode() in m.value()
            and f'"playbook":"{playbook}"'.encode() in m.value()
        ),
    )
    return [json.loads(m.value()) for m in found]


def test_signed_acknowledge_button__acknowledges_and_updates_the_root(broker, worker, slack):
    service = "slack-button-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=21), service)
    [opened] = wait_for_transition(broker, worker, service, "opened", 40)
    incident_id = opened["id"]
    wait_for(lambda: slack.messages(service), 20, "the root message")

    for forged in (
        press(worker, f"ack:{incident_id}", secret="not-the-secret"),
        press(worker, f"ack:{incident_id}", age_s=600),
    ):
        assert forged[0] == 401, forged

    status, body = press(worker, f"ack:{incident_id}")
    assert status == 200, body
    assert body["text"] == f"acknowledge {incident_id} by slack:alice"
    wait_for(
        lambda: (
            worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)[1]["status"]
            == "acknowledged"
        ),
        15,
        "the acknowledgement in the API",
    )
    _, shown = worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)
    assert shown["acknowledged_by"] == "slack:alice"
    wait_for(lambda: slack.called("chat.update"), 15, "the root rewritten")
    assert "Acknowledged by slack:alice" in str(slack.called("chat.update")[-1]["blocks"])


def test_unsigned_request__is_401(worker):
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/slack/interactions",
        data=b"payload=%7B%7D",
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 401
    assert "missing X-Slack-Request-Timestamp" in json.loads(err.value.read())["error"]


def test_approve_button__releases_a_gated_rollback(broker, worker, deployer, slack):
    send(
        broker, worker, samples("rollback-api", [(200, 48.0), (25, 420.0)], seed=31), "rollback-api"
    )

    def pending() -> list[dict]:
        _, body = worker.request("GET", "/approvals?status=pending", token=TOKEN)
        return [a for a in body["approvals"] if a["playbook"] == "gated-rollback"]

    wait_for(lambda: bool(pending()), 30, "the rollback waiting for approval")
    (approval,) = pending()
    # The incident's playbooks ran up to the gate, and the request went round.
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    wait_processed(broker.bootstrap_servers, worker, "approvals", "action_requests")
    assert deployer.requests == []  # nothing rolls back before a human says so
    assert press(worker, f"approve:{approval['id']}", secret="forged")[0] == 401
    mallory = {"id": "U666", "username": "mallory"}  # signed by Slack, but not an approver
    status, refused = press(worker, f"approve:{approval['id']}", user=mallory)
    assert (status, refused) == (
        200,
        {
            "text": "slack:mallory may not decide approvals: ask one of the approvers "
            "(FIRELINE_SLACK_APPROVERS)"
        },
    )
    status, _ = press(worker, f"approve:{approval['id']}")
    assert status == 200
    wait_for(lambda: bool(deployer.requests), 20, "the rollback request at the deployer")
    (request,) = deployer.requests
    assert (request["command"], request["model"], request["target_version"]) == (
        "rollback",
        "rollback-api-model",
        "6",
    )
    status, approvals = worker.request("GET", "/approvals?status=approved", token=TOKEN)
    (decided,) = [a for a in approvals["approvals"] if a["id"] == approval["id"]]
    assert decided["decided_by"].endswith("alice")
    # The request's message now says who approved, and its buttons are gone.
    wait_for(lambda: approval_updates(slack, approval["id"]), 10, "the approval message rewritten")
    (update,) = approval_updates(slack, approval["id"])
    assert update["text"].startswith(":white_check_mark: [APPROVED by slack:alice] playbook")
    assert "actions" not in [b["type"] for b in update["blocks"]]


def test_resolve_button__resolves_and_rewrites_the_root_without_buttons(broker, worker, slack):
    service = "slack-resolve-api"
    incident_id = open_incident(
        broker, worker, slack, samples(service, [(200, 48.0), (25, 420.0)], seed=22)
    )
    assert root_updates(slack, incident_id) == []

    status, body = press(worker, f"resolve:{incident_id}")
    assert (status, body["text"]) == (200, f"resolve {incident_id} by slack:alice")
    wait_for(
        lambda: shown(worker, incident_id)["status"] == "resolved", 15, "the resolution in the API"
    )
    incident = shown(worker, incident_id)
    assert (incident["resolution"], incident["resolved_by"]) == ("manual", "slack:alice")

    wait_for(lambda: root_updates(slack, incident_id), 15, "the root rewritten")
    (update,) = root_updates(slack, incident_id)
    assert f"[RESOLVED] Latency spike on {service} by slack:alice" in update["text"]
    assert "Resolved by slack:alice after" in json.dumps(update["blocks"])
    assert "(manual)" in json.dumps(update["blocks"])
    assert "actions" not in [b["type"] for b in update["blocks"]]
    assert '"button"' not in json.dumps(update["blocks"])  # nothing left to press


def test_press_on_a_resolved_incident__answers_with_a_note_and_changes_nothing(
    broker, worker, slack
):
    service = "slack-late-press-api"
    incident_id = open_incident(
        broker, worker, slack, samples(service, [(200, 48.0), (25, 420.0)], seed=23)
    )
    status, resolved = worker.request("POST", f"/incidents/{incident_id}/resolve", {}, TOKEN)
    assert (status, resolved["status"]) == (200, "resolved")
    wait_for(lambda: root_updates(slack, incident_id), 15, "the root rewritten as resolved")
    before = shown(worker, incident_id)
    slack_before = calls_about(slack, service, incident_id)
    assert slack_before  # the root message, its rewrite and the thread's replies
    silences_before = worker.request("GET", "/silences", token=TOKEN)[1]["silences"]

    for verb in ("ack", "resolve", "silence1h"):
        status, body = press(worker, f"{verb}:{incident_id}")
        assert (status, body) == (200, {"text": f"incident {incident_id} is already resolved"})
    # A wrongly applied press is a command on the detections topic, then an incident
    # event whose playbooks and root rewrite run before it is committed.
    wait_processed(broker.bootstrap_servers, worker, "detections", "incidents", "action_requests")
    assert shown(worker, incident_id) == before
    assert before["resolved_by"] == "api"
    assert worker.request("GET", "/silences", token=TOKEN)[1]["silences"] == silences_before
    assert calls_about(slack, service, incident_id) == slack_before


def test_silence_button__silences_subject_and_kind_for_an_hour(broker, worker, slack):
    service = "slack-silence-api"
    pattern = [(200, 48.0), (25, 420.0), (30, 48.0), (25, 420.0)]  # two spikes
    events = samples(service, pattern, seed=24)
    first_spike, second_spike = events[:225], events[225:]
    incident_id = open_incident(broker, worker, slack, first_spike)
    incident = shown(worker, incident_id)
    assert incident["subject_key"] and incident["kind"] == "latency_spike"

    pressed_at = time.time()
    status, body = press(worker, f"silence1h:{incident_id}")
    assert status == 200
    assert body["text"].startswith(f"silenced {incident['subject_key']} latency_spike for 1h")

    def silences() -> list[dict[str, Any]]:
        _, listed = worker.request("GET", "/silences?active=true", token=TOKEN)
        return [s for s in listed["silences"] if s["comment"].endswith(incident_id)]

    wait_for(lambda: bool(silences()), 15, "the silence in the API")
    (silence,) = silences()
    assert silence["matchers"] == {"subject_key": incident["subject_key"], "kind": "latency_spike"}
    assert silence["created_by"] == "slack:alice"
    assert abs(silence["starts_at"] - pressed_at) < 5
    assert silence["ends_at"] - silence["starts_at"] == 3600
    assert body["text"].endswith(f"({silence['id']})")
    wait_for(
        lambda: shown(worker, incident_id)["silenced_by"] == silence["id"],
        15,
        "the open incident marked silenced in the worker's view",
    )
    slack_before = calls_about(slack, service, incident_id)
    assert slack_before  # the root message and its evidence chart

    send(broker, worker, second_spike, service)  # the same subject and kind spikes again
    wait_for(lambda: shown(worker, incident_id)["count"] >= 2, 20, "the new detection in the view")
    incident = shown(worker, incident_id)
    assert (incident["silenced_by"], incident["notify"]) == (silence["id"], False)
    # The incident events the view shows (and any after) have had their playbooks run.
    wait_processed(
        broker.bootstrap_servers, worker, "metrics", "detections", "incidents", "action_requests"
    )
    assert calls_about(slack, service, incident_id) == slack_before


def test_reject_button__stops_a_gated_rollback(broker, worker, deployer, slack):
    service = "rollback-rejected-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=33), service)

    def approvals(status: str) -> list[dict[str, Any]]:
        _, body = worker.request("GET", f"/approvals?status={status}", token=TOKEN)
        return [a for a in body["approvals"] if a["incident"]["service"] == service]

    wait_for(lambda: bool(approvals("pending")), 30, "the rollback waiting for approval")
    (approval,) = approvals("pending")
    assert (approval["playbook"], approval["action"]) == ("gated-rollback", "rollback")
    assert press(worker, f"reject:{approval['id']}", secret="forged")[0] == 401
    status, body = press(worker, f"reject:{approval['id']}")
    assert (status, body["text"]) == (200, f"rejected {approval['id']} by slack:alice")

    wait_for(lambda: bool(approvals("rejected")), 15, "the rejection in the worker's view")
    (decided,) = approvals("rejected")
    assert (decided["id"], decided["decided_by"]) == (approval["id"], "slack:alice")
    incident_id = approval["incident"]["id"]
    records = audit(broker, worker, incident_id, "gated-rollback", 2)
    assert [(r["outcome"], r["approved_by"]) for r in records] == [
        ("pending_approval", None),
        ("rejected", "slack:alice"),
    ]
    wait_for(lambda: approval_updates(slack, approval["id"]), 10, "the approval message rewritten")
    (update,) = approval_updates(slack, approval["id"])
    assert update["text"].startswith(":no_entry: [REJECTED by slack:alice] playbook")
    # A late Approve cannot undo the rejection.
    status, body = press(worker, f"approve:{approval['id']}")
    assert (status, body["text"]) == (200, f"approval {approval['id']} was already rejected")
    wait_processed(broker.bootstrap_servers, worker, "approvals", "incidents", "action_requests")
    assert [r for r in deployer.requests if r.get("model") == f"{service}-model"] == []


def test_a_press_that_changes_nothing__tells_the_presser_why_in_an_ephemeral_reply(worker, slack):
    response_url = slack.base_url.replace("/api/", "/actions/T1/B2/xyz")
    for action_id, why in (
        ("ack:inc-0000000000000000", "no incident inc-0000000000000000"),
        ("approve:apr-000000000000", "no approval apr-000000000000"),
    ):
        status, body = press(worker, action_id, response_url=response_url)
        assert (status, body) == (200, {"text": why})
    wait_for(lambda: len(slack.called("/actions/T1/B2/xyz")) == 2, 10, "two ephemeral replies")
    replies = slack.called("/actions/T1/B2/xyz")
    assert [r["text"] for r in replies] == [
        ":information_source: no incident inc-0000000000000000",
        ":information_source: no approval apr-000000000000",
    ]
    assert all(
        r["response_type"] == "ephemeral" and r["replace_original"] is False for r in replies
    )

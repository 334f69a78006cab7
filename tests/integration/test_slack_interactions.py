"""Slack buttons on a real worker: a signed press acknowledges; unsigned, forged or stale get 401."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.broker import EmbeddedBroker
from agents.slack_signature import slack_signature
from tests.integration.support import SlackServer, WorkerProcess, wait_for, worker_env
from tests.integration.test_incidents import (
    EVERY_CHANGE,
    FAST_LIFECYCLE,
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
        **FAST_LIFECYCLE,
    )
    process = WorkerProcess(env, Path(tmp_path_factory.mktemp("worker")) / "worker.log").start()
    yield process
    process.stop()


def press(
    worker: WorkerProcess, action_id: str, secret: str = SIGNING_SECRET, age_s: float = 0
) -> tuple[int, dict[str, object]]:
    payload = {
        "type": "block_actions",
        "user": {"id": "U123", "username": "alice"},
        "actions": [{"action_id": action_id, "value": action_id.split(":", 1)[1]}],
    }
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
        lambda: worker.request("GET", f"/incidents/{incident_id}")[1]["status"] == "acknowledged",
        15,
        "the acknowledgement in the API",
    )
    _, shown = worker.request("GET", f"/incidents/{incident_id}")
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
        _, body = worker.request("GET", "/approvals?status=pending")
        return [a for a in body["approvals"] if a["playbook"] == "gated-rollback"]

    wait_for(lambda: bool(pending()), 30, "the rollback waiting for approval")
    (approval,) = pending()
    time.sleep(1.0)
    assert deployer.requests == []  # nothing rolls back before a human says so
    assert press(worker, f"approve:{approval['id']}", secret="forged")[0] == 401
    status, _ = press(worker, f"approve:{approval['id']}")
    assert status == 200
    wait_for(lambda: bool(deployer.requests), 20, "the rollback request at the deployer")
    (request,) = deployer.requests
    assert (request["command"], request["model"], request["target_version"]) == (
        "rollback",
        "rollback-api-model",
        "6",
    )
    status, approvals = worker.request("GET", "/approvals?status=approved")
    (decided,) = [a for a in approvals["approvals"] if a["id"] == approval["id"]]
    assert decided["decided_by"].endswith("alice")

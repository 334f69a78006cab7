"""The kill switch's HTTP API and Slack command, over loopback HTTP, folded like a worker does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.incidents.action_controls import ActionControls
from agents.incidents.view import IncidentView
from agents.settings import Topics
from agents.slack.commands import SlackCommands
from agents.slack.signature import slack_signature
from playbooks.kill_switch import KillSwitch

TOKEN = "api-token"
SIGNING = "slack-signing-secret"


class FoldingPublisher:
    """Keeps what goes to Kafka and folds the controls topic back, as the view follower does."""

    def __init__(self, switch: KillSwitch, view: IncidentView, topics: Topics) -> None:
        self.switch, self.view, self.topics = switch, view, topics
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes, Any]]) -> None:
        for key, value, _ in records:
            self.sent.append((topic, key, json.loads(value)))
            if topic == self.topics.action_controls:
                self.switch.apply(key, value)
        await self.view.notify()


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, FoldingPublisher]]:
    switch, view, topics = KillSwitch(), IncidentView(), Topics()
    publisher = FoldingPublisher(switch, view, topics)
    controls = ActionControls(switch, view, publisher, topics, lambda: ["rollback"], TOKEN)
    app = web.Application()
    controls.add_routes(app)
    SlackCommands(controls, SIGNING).add_routes(app)
    async with TestClient(TestServer(app)) as running:
        yield running, publisher


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_pause_and_resume__published_folded_and_audited_with_who(client):
    http, publisher = client
    assert (await http.post("/actions/pause", json={"by": "ann"})).status == 401
    answer = await http.post(
        "/actions/pause",
        json={"playbook": "rollback", "reason": "freeze", "by": "ann"},
        headers=bearer(),
    )
    body = await answer.json()
    assert answer.status == 200 and body["paused"] == ["rollback"] and not body["all_paused"]
    control, audit = publisher.sent
    assert (control[0], control[1], control[2]["paused"]) == (
        Topics().action_controls,
        b"rollback",
        True,
    )
    assert (audit[0], audit[1]) == (Topics().actions, b"kill-switch")
    assert (audit[2]["control"], audit[2]["by"], audit[2]["reason"]) == ("pause", "ann", "freeze")
    resumed = await (
        await http.post("/actions/resume", json={"playbook": "rollback"}, headers=bearer())
    ).json()
    assert resumed["paused"] == [] and resumed["switch"]["by"] == "api"
    status = await (await http.get("/actions/status")).json()
    assert [s["scope"] for s in status["switches"]] == ["rollback"]


async def test_pause__an_unknown_playbook_or_a_bad_body_is_refused(client):
    http, publisher = client
    unknown = await http.post("/actions/pause", json={"playbook": "nope"}, headers=bearer())
    assert unknown.status == 404
    assert (await unknown.json())["error"] == "no playbook 'nope' is loaded (loaded: rollback)"
    assert (await http.post("/actions/pause", data=b"[1]", headers=bearer())).status == 400
    assert publisher.sent == []


async def slash(http: TestClient, text: str, secret: str = SIGNING) -> Any:
    body = urlencode({"command": "/fireline", "text": text, "user_name": "bob"}).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return await http.post("/slack/commands", data=body, headers=headers)


async def test_slack_command__pauses_as_the_slack_user_and_refuses_a_forged_request(client):
    http, publisher = client
    assert (await slash(http, "pause", secret="forged")).status == 401
    answer = await (await slash(http, "pause rollback model retraining")).json()
    assert answer["text"] == "playbook rollback paused by slack:bob"
    assert publisher.sent[-1][2]["reason"] == "model retraining"
    assert (await (await slash(http, "status")).json())["text"] == "paused: rollback"
    everything = await (await slash(http, "pause")).json()
    assert everything["text"] == "all actions paused by slack:bob"
    assert (await (await slash(http, "resume nope")).json())["text"].startswith(
        "no playbook 'nope'"
    )
    assert (await (await slash(http, "reboot")).json())["text"].startswith("usage: /fireline")

"""With only the shipped playbooks, an incident's Slack root shows its current state.

``latency-spike.yaml`` matches ``opened`` and ``resolved`` only: acknowledging,
escalating and reopening are kept on the root by the worker itself. Each
transition rewrites the root exactly once: counted when a later transition's
rewrite (or, at the end, the action audit of the last event) has arrived, since
a worker handles an incident's events in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agents.kafka.broker import EmbeddedBroker
from agents.settings import SHIPPED_PLAYBOOKS
from fireline.detections import CommandInput
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    channel_id,
    consume,
    produce,
    wait_for,
    worker_env,
)
from tests.integration.test_incidents import TOKEN, samples, send, wait_for_transition

pytestmark = pytest.mark.integration

SERVICE = "root-status-api"
# The incident stays open until the test resolves it: its alarm is never re-sent,
# so it must not expire meanwhile.
LIFECYCLE = {
    "FIRELINE_API_TOKEN": TOKEN,
    "FIRELINE_INCIDENTS__TICK_S": "0.3",
    "FIRELINE_INCIDENTS__SIGNAL_EXPIRY_S": "300",
}


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    env = worker_env(broker.url, slack, SHIPPED_PLAYBOOKS, **LIFECYCLE)
    process = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log").start()
    yield process
    process.stop()


def root_updates(slack: SlackServer, incident_id: str) -> list[dict[str, Any]]:
    """The chat.update calls that rewrote the incident's root (its context names the id)."""
    return [c for c in slack.called("chat.update") if incident_id in json.dumps(c.get("blocks"))]


def wait_for_updates(slack: SlackServer, incident_id: str, count: int, what: str) -> None:
    wait_for(lambda: len(root_updates(slack, incident_id)) >= count, 20, what)


def buttons(update: dict[str, Any]) -> list[str]:
    """The verbs of the root's buttons (``ack``, ``resolve``, ``silence1h``)."""
    actions = [b for b in update["blocks"] if b["type"] == "actions"]
    return [e["action_id"].split(":")[0] for a in actions for e in a["elements"]]


def api(worker: WorkerProcess, verb: str, incident_id: str, **body: str) -> dict[str, Any]:
    status, answer = worker.request("POST", f"/incidents/{incident_id}/{verb}", body, TOKEN)
    assert status == 200, answer
    return dict(answer)


def escalate(broker: EmbeddedBroker, worker: WorkerProcess, incident: dict[str, Any]) -> None:
    """What a playbook step with ``on_failure: escalate`` sends to the incident's owner."""
    command = CommandInput(command="escalate", incident_id=incident["id"], by="playbook test")
    key = incident["subject_key"].encode()
    produce(
        broker.bootstrap_servers,
        worker.topic("detections"),
        [command.model_dump_json().encode()],
        key=key,
    )


def resolved_audits(broker: EmbeddedBroker, worker: WorkerProcess, incident_id: str, n: int):
    """The latency-spike-alert audit records of the incident's resolved events."""
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        n,
        30,
        where=lambda m: (
            f'"incident_id":"{incident_id}"'.encode() in m.value()
            and b'"transition":"resolved"' in m.value()
        ),
    )
    return [json.loads(m.value()) for m in found]


def test_shipped_playbooks__every_transition_rewrites_the_root_once(broker, worker, slack):
    pattern = [(200, 48.0), (25, 420.0), (30, 48.0), (25, 420.0)]  # a spike, then another
    events = samples(SERVICE, pattern, seed=41)
    send(broker, worker, events[:225], SERVICE)
    [opened] = wait_for_transition(broker, worker, SERVICE, "opened", 40)
    incident_id = opened["id"]

    def uploads() -> list[dict[str, Any]]:
        return [
            c
            for c in slack.called("files.completeUploadExternal")
            if SERVICE in str(c.get("files"))
        ]

    wait_for(uploads, 20, "the root message and the evidence chart in its thread")
    [root] = [c for c in slack.called("chat.postMessage") if incident_id in str(c.get("blocks"))]
    assert "thread_ts" not in root and buttons(root) == ["ack", "resolve", "silence1h"]
    root_at = (channel_id(root["channel"]), uploads()[0]["thread_ts"])
    assert root_updates(slack, incident_id) == []

    acked = api(worker, "ack", incident_id, by="mallory")
    assert acked["status"] == "acknowledged"
    wait_for_updates(slack, incident_id, 1, "the root rewritten as acknowledged")
    ack = root_updates(slack, incident_id)[0]
    assert (ack["channel"], ack["ts"]) == root_at
    assert "[CRITICAL: ACKNOWLEDGED]" in ack["text"]
    assert ":eyes: Acknowledged by api" in json.dumps(
        ack["blocks"]
    )  # the token's name, never the body's
    assert buttons(ack) == ["resolve", "silence1h"], "no Acknowledge button left"

    escalate(broker, worker, acked)
    wait_for_updates(slack, incident_id, 2, "the root rewritten after the escalation")

    assert api(worker, "resolve", incident_id)["status"] == "resolved"
    wait_for_updates(slack, incident_id, 3, "the root rewritten as resolved")
    ack_again, escalated, resolved = root_updates(slack, incident_id)
    assert ack_again == ack, "acknowledged once: the escalation's rewrite came next"
    assert (escalated["channel"], escalated["ts"]) == root_at
    assert "[CRITICAL: ESCALATED]" in escalated["text"]
    assert ":eyes: Acknowledged by api" in json.dumps(escalated["blocks"]), "still"
    assert (resolved["channel"], resolved["ts"]) == root_at
    assert f"[RESOLVED] Latency spike on {SERVICE} by api" in resolved["text"]
    assert "Resolved by api after" in json.dumps(resolved["blocks"])
    assert "(manual)" in json.dumps(resolved["blocks"]) and buttons(resolved) == []

    send(broker, worker, events[225:], SERVICE)  # it recurs: the same incident, reopened
    wait_for_updates(slack, incident_id, 4, "the root rewritten as open again")
    reopened = root_updates(slack, incident_id)[3]
    assert (reopened["channel"], reopened["ts"]) == root_at
    assert "[CRITICAL: REOPENED]" in reopened["text"]
    assert ":red_circle: Open" in json.dumps(reopened["blocks"])
    assert buttons(reopened) == ["ack", "resolve", "silence1h"]

    api(worker, "resolve", incident_id)
    audits = resolved_audits(broker, worker, incident_id, 2)
    assert [a["playbook"] for a in audits] == ["latency-spike-alert"] * 2, audits
    assert audits[-1]["detail"].endswith("root updated"), "the slack step rewrote it"
    # Every event was handled (the last one's audit comes after its root is kept):
    # opened, acknowledged, escalated, resolved, reopened, resolved.
    *before, last = root_updates(slack, incident_id)
    assert before == [ack, escalated, resolved, reopened], "resolved once, reopened once"
    assert (last["channel"], last["ts"]) == root_at and buttons(last) == []
    replies = [c for c in slack.called("chat.postMessage") if c.get("thread_ts") == root_at[1]]
    assert len(replies) == 2, "the playbook's replies: resolved, and resolved again"

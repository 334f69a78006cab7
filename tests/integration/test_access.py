"""Access on a real worker: roles from a tokens file, approvals that expire, and event
data that reaches Slack (through the real slack-sdk) as literal text, never markup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.incidents.access import token_hash
from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    wait_for,
    worker_env,
)
from tests.integration.test_playbooks import audit, sent, spike

pytestmark = pytest.mark.integration

TOKENS = {"vera": ("viewer", "vera-token"), "rory": ("responder", "rory-token")}
TOKENS["alma"] = ("approver", "alma-token")
APPROVAL_TTL_S = 6
ATTACK = "<!channel> <https://evil.example|Open runbook>"
PLAYBOOKS = {
    "gated.yaml": """\
name: gated-rollback
match: {kinds: [latency_spike], services: ["gated-*"]}
steps:
  - slack: {mention: "before-approval"}
  - slack: {mention: "after-approval {{ incident.service }}"}
    require_approval: true
""",
    "page.yaml": """\
name: page-everyone
match: {kinds: [latency_spike], services: ["<*"]}
steps:
  - slack: {mention: "paging about {{ incident.service }}:"}
""",
}


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("playbooks")
    for name, text in PLAYBOOKS.items():
        (directory / name).write_text(text)
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.yaml"
    tokens.write_text(
        "".join(
            f"{name}: {{role: {role}, sha256: {token_hash(token)}}}\n"
            for name, (role, token) in TOKENS.items()
        )
    )
    env = worker_env(
        broker.url,
        slack,
        directory,
        FIRELINE_API_TOKENS_PATH=str(tokens),
        FIRELINE_APPROVAL_TTL_S=str(APPROVAL_TTL_S),
        FIRELINE_INCIDENTS__TICK_S="0.5",
    )
    process = WorkerProcess(env, Path(tmp_path_factory.mktemp("worker")) / "worker.log").start()
    yield process
    process.stop()


def token(name: str) -> str:
    return TOKENS[name][1]


def pending(worker: WorkerProcess, service: str) -> list[dict[str, Any]]:
    status, listed = worker.request("GET", "/approvals?status=pending", token=token("vera"))
    assert status == 200, listed
    return [a for a in listed["approvals"] if a["incident"]["service"] == service]


def test_roles__a_responder_cannot_approve_and_a_forged_by_is_ignored(broker, worker, slack):
    spike(broker, worker, "gated-roles", seed=41)
    wait_for(lambda: bool(pending(worker, "gated-roles")), 30, "the approval in the view")
    (approval,) = pending(worker, "gated-roles")
    path = f"/approvals/{approval['id']}/approve"

    assert worker.request("GET", "/approvals")[0] == 401  # reads need a token too
    status, refused = worker.request("POST", path, {"by": "alma"}, token("rory"))
    assert (status, refused) == (
        403,
        {"error": "token 'rory' is a responder; this needs approver or above"},
    )
    status, decided = worker.request("POST", path, {"by": "mallory"}, token("alma"))

    assert (status, decided["status"], decided["decided_by"]) == (200, "approved", "alma")
    wait_for(lambda: sent(slack, "after-approval gated-roles"), 20, "the approved step")
    records = [r for r in audit(broker, worker, "gated-rollback", 3) if r["ok"]]
    assert ("ok", "alma") in [(r["outcome"], r["approved_by"]) for r in records]


def test_approval__an_expired_approval_is_rejected_in_its_thread_and_never_runs(
    broker, worker, slack
):
    spike(broker, worker, "gated-late", seed=42)
    wait_for(lambda: bool(pending(worker, "gated-late")), 30, "the approval in the view")
    (approval,) = pending(worker, "gated-late")

    incident_id = approval["incident"]["id"].encode()
    # The positive signal first: the owning worker rejected it once its time ran out.
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        1,
        APPROVAL_TTL_S + 20,
        where=lambda m: incident_id in m.value() and b'"outcome":"rejected"' in m.value(),
    )
    assert found, "no rejection of the expired approval in the audit"
    record = json.loads(found[0].value())
    assert record["approved_by"] == "fireline (expired: nobody decided within 6 s)"
    status, refused = worker.request(
        "POST", f"/approvals/{approval['id']}/approve", {}, token("alma")
    )
    assert (status, refused) == (409, {"error": f"approval {approval['id']} was already rejected"})
    rewritten = [
        u["text"] for u in slack.called("chat.update") if approval["id"] in str(u.get("text"))
    ]
    assert rewritten and rewritten[-1].startswith(
        ":no_entry: [REJECTED by fireline (expired: nobody decided within 6 s)]"
    )
    assert sent(slack, "after-approval gated-late") == []


def test_slack__a_label_value_reaches_slack_as_literal_text(broker, worker, slack):
    spike(broker, worker, ATTACK, seed=43)
    wait_for(lambda: slack.messages("paging about"), 30, "the page in Slack")

    calls = [json.dumps(body) for body in slack.called("chat.postMessage")]
    about = [c for c in calls if "evil.example" in c]
    assert about, calls
    for call in about:
        assert "<!channel>" not in call and "<https://evil.example" not in call, call
    escaped = "&lt;!channel&gt; &lt;https://evil.example|Open runbook&gt;"
    (page,) = slack.messages("paging about")
    assert page.startswith(f"paging about {escaped}:")
    root = next(json.loads(c) for c in about if "blocks" in json.loads(c))
    blocks = root["blocks"] if isinstance(root["blocks"], list) else json.loads(root["blocks"])
    header = next(b for b in blocks if b["type"] == "header")
    assert escaped in header["text"]["text"]

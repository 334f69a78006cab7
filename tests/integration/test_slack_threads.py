"""One thread per incident, through the real slack-sdk against the loopback Slack stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agents.slack.thread_notes import ThreadNotes
from fireline.incident import (
    Evidence,
    EvidencePoint,
    Incident,
    Resolution,
    Signal,
    Status,
    Transition,
)
from playbooks.actions import default_registry
from playbooks.chat.chart import PNG_MAGIC
from playbooks.chat.root_keeper import RootKeeper
from playbooks.chat.sinks import SlackSink, make_chat_sink
from playbooks.chat.threads import ThreadStore
from playbooks.context import ActionContext
from playbooks.registry import ActionResult
from playbooks.steps import Outcome, StepRecord
from tests.factories import make_incident
from tests.integration.support import SLACK_TOKEN, SlackServer, channel_id

SIGNAL = Signal(
    detector="latency",
    series="latency_ms{service=fraud-api}",
    observed=250.0,
    baseline=50.0,
    score=0.99,
    at=1795255200.0,
)
OPENED = make_incident(signals=[SIGNAL])


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def context(slack: SlackServer, dashboard_url: str | None = None) -> ActionContext:
    sink = make_chat_sink(SLACK_TOKEN, slack.base_url)
    assert isinstance(sink, SlackSink)
    return ActionContext(
        chat=sink, default_channel="#oncall", threads=ThreadStore(), dashboard_url=dashboard_url
    )


async def run(incident: Incident, ctx: ActionContext, **params: object) -> ActionResult:
    action = default_registry().get("slack")
    return await action.run(incident, action.params_model.model_validate(params), ctx)


def later(transition: Transition, **changes: object) -> Incident:
    return OPENED.model_copy(update={"transition": transition, "revision": 2, **changes})


async def test_opened__posts_a_root_message_with_blocks_and_buttons(slack):
    ctx = context(slack, dashboard_url="https://grafana/d/x?var-model={model}")
    result = await run(OPENED, ctx, runbook="https://wiki/runbooks/latency")
    assert result.ok, result.detail
    [call] = slack.called("chat.postMessage")
    assert call["channel"] == "#oncall" and "thread_ts" not in call
    assert "[CRITICAL] latency_ms of fraud-api is 5x its baseline" in call["text"]
    assert "Dashboard: https://grafana/d/x?var-model=fraud" in call["text"]
    kinds = [b["type"] for b in call["blocks"]]
    assert kinds[:2] == ["header", "section"] and "actions" in kinds
    actions = next(b for b in call["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        f"ack:{OPENED.id}",
        f"resolve:{OPENED.id}",
        f"silence1h:{OPENED.id}",
    ]
    assert "<https://wiki/runbooks/latency|Runbook>" in str(call["blocks"])


async def test_later_events__reply_in_the_thread_and_resolve_updates_the_root(slack):
    ctx = context(slack)
    assert (await run(OPENED, ctx)).ok
    [root] = slack.called("chat.postMessage")
    root_ts = ctx.threads.get(OPENED.id, "#oncall").thread_ts

    updated = await run(later(Transition.UPDATED, count=2), ctx)
    assert updated.ok and updated.detail.endswith(f"in thread {root_ts}")
    assert slack.called("chat.update") == []  # an update changes no status

    resolved = later(
        Transition.RESOLVED,
        status=Status.RESOLVED,
        revision=3,
        resolved_at=OPENED.first_seen + 720,
        last_seen=OPENED.first_seen + 720,
        resolution=Resolution.RECOVERED,
    )
    result = await run(resolved, ctx)
    assert result.ok and result.detail.endswith("root updated"), result.detail

    replies = slack.called("chat.postMessage")[1:]
    assert [r["thread_ts"] for r in replies] == [root_ts, root_ts]
    assert all(r["channel"] == channel_id("#oncall") for r in replies)  # the id Slack answered
    assert (
        "[RESOLVED] latency_ms of fraud-api is 5x its baseline after 12 min" in replies[1]["text"]
    )
    [update] = slack.called("chat.update")
    assert (update["channel"], update["ts"]) == (channel_id("#oncall"), root_ts)
    assert "Resolved after 12 min (recovered)" in str(update["blocks"])
    assert "actions" not in [b["type"] for b in update["blocks"]]  # no buttons once resolved
    assert root["text"] != update["text"]


async def test_acknowledged__updates_the_root_without_the_acknowledge_button(slack):
    ctx = context(slack)
    await run(OPENED, ctx)
    acked = later(Transition.ACKNOWLEDGED, status=Status.ACKNOWLEDGED, acknowledged_by="alice")
    assert (await run(acked, ctx)).ok
    [update] = slack.called("chat.update")
    assert ":eyes: Acknowledged by alice" in str(update["blocks"])
    actions = next(b for b in update["blocks"] if b["type"] == "actions")
    assert [e["action_id"].split(":")[0] for e in actions["elements"]] == ["resolve", "silence1h"]


async def test_each_channel_gets_its_own_root(slack):
    ctx = context(slack)
    await run(OPENED, ctx)
    await run(OPENED, ctx, channel="#ml-team")
    calls = slack.called("chat.postMessage")
    assert [c["channel"] for c in calls] == ["#oncall", "#ml-team"]
    assert all("thread_ts" not in c and c.get("blocks") for c in calls)


async def test_a_failed_post_is_a_failed_action_and_no_root_is_remembered(slack):
    sink = make_chat_sink("xoxb-wrong", slack.base_url)
    ctx = ActionContext(chat=sink, default_channel="#oncall")
    result = await run(OPENED, ctx)
    assert not result.ok
    assert result.detail == "Slack rejected chat.postMessage to #oncall: invalid_auth"
    assert ctx.threads.get(OPENED.id, "#oncall") is None


async def test_a_root_posted_before_a_crash__is_found_in_slack_not_posted_again(slack):
    # The worker that posted it died before its thread record was read back: a
    # new worker (empty store) runs the step again and finds the root by its metadata.
    first = context(slack)
    assert (await run(OPENED.model_copy(update={"evidence": [EVIDENCE]}), first)).ok
    [root] = slack.called("chat.postMessage")
    assert root["metadata"] == {
        "event_type": "fireline_incident_root",
        "event_payload": {"incident_id": OPENED.id},
    }
    uploads = len(slack.called("files.completeUploadExternal"))
    restarted = context(slack)
    result = await run(OPENED.model_copy(update={"evidence": [EVIDENCE]}), restarted)
    assert result.ok, result.detail
    assert [c for c in slack.called("chat.postMessage") if "thread_ts" not in c] == [root]
    assert len(slack.called("files.completeUploadExternal")) == uploads  # charts went once
    held = restarted.threads.get(OPENED.id, "#oncall")
    assert held is not None and held.thread_ts == first.threads.get(OPENED.id, "#oncall").ref.ts
    assert "was already posted; not posted again" in result.detail
    assert (await run(later(Transition.UPDATED), restarted)).ok
    assert slack.called("chat.postMessage")[-1]["thread_ts"] == held.thread_ts


async def test_another_incidents_root_in_the_channel__is_not_taken_for_this_ones(slack):
    other = make_incident(id="inc-fedcba9876543210", signals=[SIGNAL])
    await run(other, context(slack))
    await run(OPENED, context(slack))
    roots = [c for c in slack.called("chat.postMessage") if "thread_ts" not in c]
    assert [r["metadata"]["event_payload"]["incident_id"] for r in roots] == [other.id, OPENED.id]


EVIDENCE = Evidence(
    series=SIGNAL.series,
    baseline=50.0,
    detected_at=SIGNAL.at,
    points=[
        EvidencePoint(at=SIGNAL.at - 60 + i, value=50.0 if i < 55 else 250.0) for i in range(61)
    ],
)


async def test_opened__uploads_the_evidence_chart_into_the_thread(slack):
    ctx = context(slack)
    result = await run(OPENED.model_copy(update={"evidence": [EVIDENCE]}), ctx)
    assert result.ok and result.detail.endswith("1 chart(s) uploaded"), result.detail
    root = ctx.threads.get(OPENED.id, "#oncall").ref
    [asked] = slack.called("files.getUploadURLExternal")
    assert asked["filename"] == f"{OPENED.id}.png"
    [png] = slack.uploads.values()
    assert png.startswith(PNG_MAGIC) and int(asked["length"]) == len(png)
    [completed] = slack.called("files.completeUploadExternal")
    assert (completed["channel_id"], completed["thread_ts"]) == (root.channel, root.ts)
    assert json.loads(completed["files"])[0]["title"] == f"{SIGNAL.series}: evidence"


async def test_a_failed_upload_still_posts_the_message_and_says_so(slack, caplog):
    slack.fail_uploads = True
    ctx = context(slack)
    result = await run(OPENED.model_copy(update={"evidence": [EVIDENCE]}), ctx)
    assert result.ok and "no chart of " in result.detail, result.detail
    assert len(slack.called("chat.postMessage")) == 1
    assert slack.called("files.completeUploadExternal") == []
    assert f"no evidence chart of {SIGNAL.series} for" in caplog.text
    assert SLACK_TOKEN not in caplog.text


async def test_chart_false__uploads_nothing(slack):
    ctx = context(slack)
    assert (await run(OPENED.model_copy(update={"evidence": [EVIDENCE]}), ctx, chart=False)).ok
    assert slack.called("files.getUploadURLExternal") == []


async def test_every_evidence_series_is_charted_up_to_three(slack):
    ctx = context(slack)
    series = [EVIDENCE.model_copy(update={"series": f"latency_ms{{pod={n}}}"}) for n in range(4)]
    result = await run(OPENED.model_copy(update={"evidence": series}), ctx)
    assert result.detail.endswith("3 chart(s) uploaded"), result.detail
    asked = slack.called("files.getUploadURLExternal")
    assert [a["filename"] for a in asked] == [
        f"{OPENED.id}.png",
        f"{OPENED.id}-2.png",
        f"{OPENED.id}-3.png",
    ]
    titles = [
        json.loads(c["files"])[0]["title"] for c in slack.called("files.completeUploadExternal")
    ]
    assert titles == [f"latency_ms{{pod={n}}}: evidence" for n in range(3)]


async def test_a_related_incident_joins_the_open_thread_and_its_head_is_updated_there(slack):
    ctx = context(slack)
    assert (await run(OPENED, ctx)).ok
    first_ts = ctx.threads.get(OPENED.id, "#oncall").thread_ts
    drift = make_incident(
        id="inc-feedfacefeedface",
        kind="prediction_drift",
        title="prediction drift on fraud v3",
        related=[OPENED.id],
    )
    joined = await run(drift, ctx)
    assert joined.ok and f"in the thread {first_ts} of a related incident" in joined.detail
    head = slack.called("chat.postMessage")[1]
    assert head["thread_ts"] == first_ts and head.get("blocks"), "a full head, in the thread"
    assert f"ack:{drift.id}" in str(head["blocks"])
    root = ctx.threads.get(drift.id, "#oncall")
    assert root.joined and root.thread_ts == first_ts

    resolved = drift.model_copy(
        update={
            "transition": Transition.RESOLVED,
            "status": Status.RESOLVED,
            "revision": 2,
            "resolution": Resolution.RECOVERED,
        }
    )
    assert (await run(resolved, ctx)).ok
    reply = slack.called("chat.postMessage")[2]
    assert reply["thread_ts"] == first_ts
    [update] = slack.called("chat.update")
    assert update["ts"] == root.ref.ts != first_ts, "its own head, not the other incident's root"


async def test_an_escalation_restarts_the_reminder_clock(slack):
    ctx = context(slack)
    assert (await run(OPENED, ctx)).ok
    store = ctx.threads
    assert store.get(OPENED.id, "#oncall").nudged_at is None
    assert (await run(later(Transition.UPDATED, count=2), ctx)).ok
    assert store.get(OPENED.id, "#oncall").nudged_at is None, "an update calls nobody"
    assert (await run(later(Transition.ESCALATED, revision=3), ctx)).ok
    root = store.get(OPENED.id, "#oncall")
    assert root.nudged_at is not None and root.last_nudged_at == root.nudged_at
    assert root.reminders == 0


async def test_the_worker_keeper_after_the_slack_step__finds_the_root_current(slack):
    ctx = context(slack)
    await run(OPENED, ctx, runbook="https://wiki/runbooks/latency")
    acked = later(Transition.ACKNOWLEDGED, status=Status.ACKNOWLEDGED, acknowledged_by="alice")
    result = await run(acked, ctx)  # this step names no runbook
    assert result.detail.endswith("root updated"), result.detail
    keeper = RootKeeper(ctx.chat, ctx.threads)
    assert await keeper.keep(acked) == 0, "the step already rewrote it for this revision"
    [update] = slack.called("chat.update")
    assert "<https://wiki/runbooks/latency|Runbook>" in str(update["blocks"]), "as posted"

    resolved = later(Transition.RESOLVED, status=Status.RESOLVED, revision=3)
    assert await keeper.keep(resolved) == 1, "no slack step matched: the keeper alone"
    assert (await run(resolved, ctx)).detail.endswith(f"in thread {update['ts']}")
    assert len(slack.called("chat.update")) == 2


DRY_RECORDS = [
    StepRecord(
        "dry-page", "slack", "slack", Outcome.DRY_RUN, "dry-run: would run slack", {"mention": "x"}
    ),
    StepRecord("dry-page", "page", "pagerduty", Outcome.SKIPPED, "when is false: false"),
]


async def test_dry_run_summary__in_the_channel_then_in_the_incidents_thread(slack):
    ctx = context(slack)
    notes = ThreadNotes(ctx.chat, ctx.threads, "#oncall")
    await notes.announce_dry_run("dry-page", OPENED, DRY_RECORDS)  # no thread yet
    assert (await run(OPENED, ctx)).ok
    await notes.announce_dry_run("dry-page", OPENED, DRY_RECORDS)
    alone, root, in_thread = slack.called("chat.postMessage")
    assert alone["channel"] == "#oncall" and "thread_ts" not in alone
    assert alone["text"].splitlines() == [
        f"[DRY-RUN] playbook dry-page for {OPENED.id} ({OPENED.title}):",
        '- slack: would run {"mention": "x"}',
        "- page: skipped {}",
    ]
    assert "thread_ts" not in root
    assert in_thread["thread_ts"] == ctx.threads.get(OPENED.id, "#oncall").thread_ts
    assert in_thread["text"] == alone["text"]


async def test_dry_run_summary__a_refused_post_is_logged_not_raised(slack, caplog):
    sink = make_chat_sink("xoxb-wrong", slack.base_url)
    notes = ThreadNotes(sink, ThreadStore(), "#oncall")
    await notes.announce_dry_run("dry-page", OPENED, DRY_RECORDS)
    assert "could not post the dry-run summary of dry-page: Slack rejected" in caplog.text

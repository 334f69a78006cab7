"""The ``slack`` action: one thread per incident (or the console without a token).

The first message about an incident in a channel is its root: a Block Kit
message with the evidence, links and buttons. Later events are replies in its
thread. An incident related to one that already has a thread in the channel
(same model or service) joins that thread: its head message is a reply there.
Charts of the evidence (one PNG per series, up to three) go into the thread;
when one cannot be drawn or uploaded, the messages still go out and the failure
is logged.

Keeping a root true (status, severity) is not this action's job but the
worker's :class:`~playbooks.chat.root_keeper.RootKeeper`, run for every
incident event whether or not a playbook matched it. This action asks the same
keeper to rewrite its channel's root right after its reply, so the thread reads
in order and its detail says whether the root was updated; the keeper's record
of the revision each root shows makes the worker's pass after the playbooks
find that root current, so a root is never rewritten twice for one event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Annotated, Self

from pydantic import Field

from fireline.errors import ActionError, ChartError
from fireline.incident import Incident, Transition
from playbooks.chat.blocks import Links, SlackMessage, dashboard_url, root_message, root_metadata
from playbooks.chat.chart_process import CHARTS
from playbooks.chat.escape import mrkdwn
from playbooks.chat.messages import incident_text, shown_series
from playbooks.chat.root_keeper import THREADS_LOAD_WAIT_S, RootKeeper
from playbooks.chat.sinks import ChatSink, MessageRef
from playbooks.chat.threads import ThreadRoot, ThreadStore
from playbooks.context import ActionContext
from playbooks.registry import (
    ActionParams,
    ActionRegistry,
    ActionResult,
    Reconciliation,
    Verdict,
)
from playbooks.templating import SLACK_MRKDWN

log = logging.getLogger(__name__)

MAX_CHARTS = 3  # the series that detected first; more would flood the thread

_CALLS_AGAIN = {Transition.ESCALATED, Transition.REOPENED}


class SlackParams(ActionParams):
    """Params of the ``slack`` action."""

    channel: str | None = Field(
        default=None, description="Channel name or id; defaults to the worker's slack_channel."
    )
    mention: Annotated[str | None, SLACK_MRKDWN] = Field(
        default=None,
        description="Prefix for the message, e.g. <!subteam^S0123> or @oncall; incident "
        "fields templated into it are escaped (literal text, never a ping or a link).",
    )
    chart: bool = Field(
        default=True,
        description="Upload charts of the evidence (up to 3 series) into the new thread.",
    )
    runbook: str | None = Field(
        default=None,
        description="Runbook URL, linked from the incident's root message; default: the "
        "playbook's runbook_url.",
    )

    def resolved(self, incident: Incident, context: ActionContext) -> Self:
        """The channel defaults to the worker's ``slack_channel``, the runbook to the playbook's."""
        defaults = {
            "channel": self.channel or context.default_channel,
            "runbook": self.runbook or context.runbook_url,
        }
        return self.model_copy(update=defaults)


async def _upload_charts(sink: ChatSink, thread: MessageRef, incident: Incident) -> str:
    """Chart each evidence series into the thread; a failure is logged, never fails the step."""
    uploaded, failures = 0, []
    for index, evidence in enumerate(incident.evidence[:MAX_CHARTS]):
        try:
            png = await CHARTS.render(evidence, incident.title)
            name = f"{incident.id}-{index + 1}.png" if index else f"{incident.id}.png"
            title = f"{mrkdwn(shown_series(incident, evidence))}: evidence"
            await sink.upload(thread, name, png, title)
        except (ChartError, ActionError) as exc:
            log.warning("no evidence chart of %s for %s: %s", evidence.series, incident.id, exc)
            failures.append(f"no chart of {evidence.series}: {exc}")
        else:
            uploaded += 1
    parts = ([f"{uploaded} chart(s) uploaded"] if uploaded else []) + failures
    return "".join(f"; {p}" for p in parts)


def _related_thread(threads: ThreadStore, incident: Incident, channel: str) -> ThreadRoot | None:
    """A related incident's thread in ``channel`` (the most recent), to join."""
    roots = [r for i in incident.related if (r := threads.get(i, channel)) is not None]
    return max(roots, key=lambda r: r.posted_at) if roots else None


async def _start_thread(
    sink: ChatSink,
    threads: ThreadStore,
    incident: Incident,
    channel: str,
    links: Links,
    mention: str | None,
) -> tuple[ThreadRoot, str, bool]:
    """Post the incident's head message: a new root, or a reply in a related incident's thread.

    A root this incident already has in the channel (posted before a crash, its
    thread record lost or not replayed yet) is adopted, never posted again.
    Returns the root, what was done, and whether a message was posted.
    """
    now = time.time()
    message = root_message(incident, links, mention)
    related = _related_thread(threads, incident, channel)
    if related is None:
        found = await sink.find_root(channel, incident.id)
        if found is not None:  # shows an unknown revision: the root keeper rewrites it
            root = ThreadRoot(channel, found, found.ts, now, links=links)
            await threads.remember(incident.id, root)
            return root, f"its root {found.ts} was already posted; not posted again", False
        ref = await sink.send(channel, replace(message, metadata=root_metadata(incident.id)))
        thread_ts, detail = ref.ts, f"posted {ref.ts}"
    else:
        ref = await sink.send(related.ref.channel, message, thread_ts=related.thread_ts)
        thread_ts = related.thread_ts
        detail = f"posted {ref.ts} in the thread {related.thread_ts} of a related incident"
    # What the head shows, so the root keeper rewrites it from the next transition on.
    root = ThreadRoot(channel, ref, thread_ts, now, shown_revision=incident.revision, links=links)
    await threads.remember(incident.id, root)
    return root, detail, True


async def _continue_thread(
    sink: ChatSink,
    threads: ThreadStore,
    root: ThreadRoot,
    incident: Incident,
    params: SlackParams,
) -> str:
    """Reply in the incident's thread; have its head rewritten when the status or severity changed.

    Raises ActionError only when the reply could not be posted.
    """
    text = incident_text(incident)
    if params.mention:
        text = f"{params.mention} {text}"
    reply = await sink.send(root.ref.channel, SlackMessage(text), thread_ts=root.thread_ts)
    detail = f"posted {reply.ts} in thread {root.thread_ts}"
    if incident.transition in _CALLS_AGAIN:  # reminders start over from here
        await threads.nudged(incident.id, root, time.time())
    try:
        if await RootKeeper(sink, threads).keep_root(incident, root.channel):
            detail += "; root updated"
    except ActionError as exc:  # the reply went out: do not fail (a retry would repeat it)
        log.warning("could not update the root message of %s: %s", incident.id, exc)
        detail += f"; root not updated: {exc}"
    return detail


def register(registry: ActionRegistry) -> None:
    """Add the slack action to ``registry``."""

    @registry.action("slack")
    async def slack(
        incident: Incident, params: SlackParams, context: ActionContext
    ) -> ActionResult:
        sink = context.require(context.chat, "chat sink")
        params = params.resolved(incident, context)
        channel = context.require(params.channel, "default chat channel")
        threads = context.threads
        if not await threads.wait_loaded(THREADS_LOAD_WAIT_S):
            log.warning("chat threads not replayed yet; %s may get a second root", incident.id)
        links = Links(params.runbook, dashboard_url(context.dashboard_url, incident))
        root = threads.get(incident.id, channel)
        try:
            if root is None:
                root, detail, posted = await _start_thread(
                    sink, threads, incident, channel, links, params.mention
                )
                if params.chart and posted:
                    detail += await _upload_charts(sink, root.thread, incident)
            else:
                detail = await _continue_thread(sink, threads, root, incident, params)
        except ActionError as exc:
            return ActionResult("slack", ok=False, detail=str(exc), target=channel)
        return ActionResult("slack", ok=True, detail=detail, target=channel)

    @registry.reconciler("slack")
    async def reconcile_slack(
        incident: Incident, params: SlackParams, context: ActionContext
    ) -> Reconciliation:
        params = params.resolved(incident, context)
        channel = params.channel or ""
        await context.threads.wait_loaded(THREADS_LOAD_WAIT_S)
        root = context.threads.get(incident.id, channel)
        # The thread record is published right after the head message, and the head is
        # rewritten (shown_revision) right after a reply: either shows this event went out.
        if root is not None and root.shown_revision >= incident.revision:
            return Reconciliation(
                Verdict.DONE, f"the thread {root.thread_ts} in {channel} shows this event"
            )
        return Reconciliation(
            Verdict.UNKNOWN, f"cannot tell whether the message about this event reached {channel}"
        )

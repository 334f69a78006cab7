"""The ``slack`` action: one thread per incident (or the console without a token).

The first message about an incident in a channel is its root: a Block Kit
message with the evidence, links and buttons. Later events are replies in its
thread, and an event that changes the status or severity (acknowledged,
resolved, escalated, reopened) also rewrites the root in place. A chart of the
evidence goes into a new thread as a PNG; when it cannot be drawn or uploaded,
the messages still go out and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import Field

from fireline.errors import ActionError, ChartError
from playbooks.actions.chat import ChatSink, MessageRef
from playbooks.actions.threads import ThreadStore
from playbooks.evidence_chart import render_chart
from playbooks.incident import Incident, Transition
from playbooks.messages import incident_text
from playbooks.registry import ActionContext, ActionParams, ActionRegistry, ActionResult
from playbooks.slack_blocks import Links, SlackMessage, dashboard_url, root_message

log = logging.getLogger(__name__)

_REWRITE_ROOT = {
    Transition.ACKNOWLEDGED,
    Transition.RESOLVED,
    Transition.ESCALATED,
    Transition.REOPENED,
}


class SlackParams(ActionParams):
    """Params of the ``slack`` action."""

    channel: str | None = Field(
        default=None, description="Channel name or id; defaults to the worker's slack_channel."
    )
    mention: str | None = Field(
        default=None, description="Prefix for the message, e.g. <!subteam^S0123> or @oncall."
    )
    chart: bool = Field(
        default=True, description="Upload a chart of the evidence into the new thread."
    )
    runbook: str | None = Field(
        default=None, description="Runbook URL, linked from the incident's root message."
    )


async def _upload_chart(sink: ChatSink, thread: MessageRef, incident: Incident) -> str:
    """Chart the first evidence into the thread; a failure is logged, never fails the step."""
    if not incident.evidence:
        return ""
    evidence = incident.evidence[0]
    try:
        png = await asyncio.to_thread(render_chart, evidence, incident.title)
        await sink.upload(thread, f"{incident.id}.png", png, f"{evidence.series}: evidence")
    except (ChartError, ActionError) as exc:
        log.warning("no evidence chart for %s: %s", incident.id, exc)
        return f"; no chart: {exc}"
    return "; chart uploaded"


def threads_of(context: ActionContext) -> ThreadStore:
    """The worker's thread store (one is created on first use)."""
    store = context.services.get("slack_threads")
    if store is None:
        store = context.services["slack_threads"] = ThreadStore()
    assert isinstance(store, ThreadStore)
    return store


def register(registry: ActionRegistry) -> None:
    """Add the slack action to ``registry``."""

    @registry.action("slack")
    async def slack(
        incident: Incident, params: SlackParams, context: ActionContext
    ) -> ActionResult:
        sink: ChatSink = context.require("chat")
        channel = params.channel or str(context.require("default_channel"))
        threads = threads_of(context)
        template = context.services.get("dashboard_url")
        links = Links(params.runbook, dashboard_url(template, incident))
        root = threads.get(incident.id, channel)
        try:
            if root is None:
                ref = await sink.send(channel, root_message(incident, links, params.mention))
                threads.put(incident.id, channel, ref)
                detail = f"posted {ref.ts}"
                if params.chart:
                    detail += await _upload_chart(sink, ref, incident)
                return ActionResult("slack", ok=True, detail=detail, target=channel)
            text = incident_text(incident)
            if params.mention:
                text = f"{params.mention} {text}"
            reply = await sink.send(root.channel, SlackMessage(text), thread_ts=root.ts)
        except ActionError as exc:
            return ActionResult("slack", ok=False, detail=str(exc), target=channel)
        detail = f"posted {reply.ts} in thread {root.ts}"
        if incident.transition in _REWRITE_ROOT:
            try:
                await sink.update(root, root_message(incident, links))
            except ActionError as exc:  # the reply went out: do not fail (a retry would repeat it)
                log.warning("could not update the root message of %s: %s", incident.id, exc)
                detail += f"; root not updated: {exc}"
            else:
                detail += "; root updated"
        return ActionResult("slack", ok=True, detail=detail, target=channel)

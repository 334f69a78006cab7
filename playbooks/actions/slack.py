"""The ``slack`` action: post the incident to a channel (or the console without a token)."""

from __future__ import annotations

from pydantic import Field

from fireline.errors import ActionError
from playbooks.actions.chat import ChatSink
from playbooks.incident import Incident
from playbooks.messages import incident_text
from playbooks.registry import ActionContext, ActionParams, ActionRegistry, ActionResult


class SlackParams(ActionParams):
    """Params of the ``slack`` action."""

    channel: str | None = Field(
        default=None, description="Channel name or id; defaults to the worker's slack_channel."
    )
    mention: str | None = Field(
        default=None, description="Prefix for the message, e.g. <!subteam^S0123> or @oncall."
    )


def register(registry: ActionRegistry) -> None:
    """Add the slack action to ``registry``."""

    @registry.action("slack")
    async def slack(
        incident: Incident, params: SlackParams, context: ActionContext
    ) -> ActionResult:
        sink: ChatSink = context.require("chat")
        channel = params.channel or str(context.require("default_channel"))
        text = incident_text(incident)
        if params.mention:
            text = f"{params.mention} {text}"
        try:
            ref = await sink.post(channel, text)
        except ActionError as exc:
            return ActionResult("slack", ok=False, detail=str(exc), target=channel)
        return ActionResult("slack", ok=True, detail=f"posted {ref}", target=channel)

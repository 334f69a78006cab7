"""The buttons of fireline's Slack messages: ``POST /slack/interactions`` and Socket Mode.

Over HTTP, Slack posts a form with one field, ``payload`` (JSON), signed with
the app's signing secret; over Socket Mode (agents.slack.socket_mode) the same
payload arrives in a websocket envelope, authenticated by the app-level token.
Both hand it to :meth:`SlackInteractions.handle_payload`. Each button's action
id names its verb and target (``ack:<incident id>``); the verbs map to the
incident API's own operations (:class:`IncidentApi`'s ``publish_*``), with the
Slack user as ``by``. The answer is quick: the owning worker applies the
change, and the incident's thread shows it when its playbook posts the event.

Anyone in the channel may acknowledge, resolve or silence; only the users and
user groups on the approvers list (agents.slack.approvers) may approve or
reject, and never an expired approval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.webhook.async_client import AsyncWebhookClient

from agents.incidents.api import IncidentApi, error
from agents.incidents.silences import SilenceRequest
from agents.pipelines.model_commands import ModelCommand
from agents.slack.approvers import SlackApprovers
from agents.slack.signature import read_signed_body
from fireline.incident import Incident, Status
from playbooks.approvals import Decision
from playbooks.chat.blocks import (
    ACCEPT,
    ACKNOWLEDGE,
    APPROVE,
    REJECT,
    RESOLVE,
    SILENCE,
    parse_action_id,
)
from playbooks.chat.escape import mrkdwn

log = logging.getLogger(__name__)

SILENCE_DURATION = "1h"
RESPONSE_TIMEOUT_S = 5


class Refusal(str):
    """A button's note when it changed nothing; it is told back to whoever pressed."""

    __slots__ = ()


class SlackInteractions:
    """Applies Slack button presses; verifies those that come over HTTP."""

    def __init__(
        self,
        api: IncidentApi,
        signing_secret: str | None,
        clock: Callable[[], float] = time.time,
        approvers: SlackApprovers | None = None,
    ) -> None:
        """``approvers``: who may approve from Slack (None: nobody)."""
        self.api = api
        self.signing_secret = signing_secret
        self.clock = clock
        self.approvers = approvers or SlackApprovers(())
        self._replies: set[asyncio.Task[None]] = set()  # ephemeral replies under way

    def add_routes(self, app: web.Application) -> None:
        """Register ``POST /slack/interactions``."""
        app.router.add_post("/slack/interactions", self.interact)

    async def interact(self, request: web.Request) -> web.Response:
        """Check the signature, then apply every button in the payload."""
        body = await read_signed_body(request, self.signing_secret, self.clock(), "Slack buttons")
        if isinstance(body, web.Response):
            return body
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, IndexError, ValueError) as exc:
            return error(400, f"no JSON payload field: {exc}")
        if not isinstance(payload, dict):
            return error(400, "payload must be a JSON object")
        return web.json_response({"text": await self.handle_payload(payload)})

    async def handle_payload(self, payload: dict[str, Any]) -> str:
        """Apply every button of a ``block_actions`` payload, from either transport.

        The caller has established that Slack sent it (signature or websocket).
        Returns the notes of the buttons, joined with ``; ``.
        """
        by = slack_user(payload)
        user_id = slack_user_id(payload)
        notes = [
            await self.apply(str(a.get("action_id", "")), by, user_id) for a in actions(payload)
        ]
        refusals = [n for n in notes if isinstance(n, Refusal)]
        response_url = payload.get("response_url")
        if refusals and isinstance(response_url, str) and response_url.startswith("http"):
            # Slack shows neither transport's answer: only the response_url reaches the presser.
            text = mrkdwn("; ".join(refusals))  # names and ids are shown, never markup
            task = asyncio.create_task(self._tell_presser(response_url, text))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)
        return "; ".join(notes)

    async def _tell_presser(self, response_url: str, text: str) -> None:
        """An ephemeral reply (only the presser sees it) saying why nothing changed."""
        try:
            response = await AsyncWebhookClient(response_url, timeout=RESPONSE_TIMEOUT_S).send(
                text=f":information_source: {text}",
                response_type="ephemeral",
                replace_original=False,
            )
        except Exception as exc:  # noqa: BLE001 - a courtesy: the press itself is done
            # Not the URL: it carries a token that lets anyone answer in the channel.
            log.warning("could not tell the Slack user why nothing changed: %r", type(exc).__name__)
            return
        if response.status_code != 200:
            log.warning("Slack refused the ephemeral reply: HTTP %s", response.status_code)

    async def apply(self, action_id: str, by: str, user_id: str | None = None) -> str:
        """Do what one button says; return a note for the log and the response.

        ``user_id``: the Slack user id that pressed, checked against the approvers.
        """
        try:
            verb, target = parse_action_id(action_id)
        except ValueError as exc:
            return Refusal(exc)
        if verb in (APPROVE, REJECT):
            if not await self.approvers.allows(user_id):
                log.warning("approval %s: %s (%s) is not an approver", target, by, user_id)
                return Refusal(
                    f"{by} may not decide approvals: ask one of the approvers "
                    "(FIRELINE_SLACK_APPROVERS)"
                )
            return await self._decide(
                target, Decision.APPROVED if verb == APPROVE else Decision.REJECTED, by
            )
        incident = self.api.view.incidents.get(target)
        if incident is None:
            return Refusal(f"no incident {target}")
        if not incident.is_open:
            return Refusal(f"incident {target} is already resolved")
        if verb == ACKNOWLEDGE and incident.status is Status.ACKNOWLEDGED:
            return Refusal(f"incident {target} is already acknowledged")
        if verb in (ACKNOWLEDGE, RESOLVE):
            command = "acknowledge" if verb == ACKNOWLEDGE else "resolve"
            await self.api.publish_command(incident, command, by)
            log.info("incident %s: %s by %s (Slack)", incident.id, command, by)
            return f"{command} {incident.id} by {by}"
        if verb == SILENCE:
            silence = SilenceRequest(
                matchers={"subject_key": incident.subject_key, "kind": incident.kind},
                duration=SILENCE_DURATION,
                comment=f"Silence 1h from Slack on incident {incident.id}",
                created_by=by,
            ).to_silence(self.clock())
            await self.api.publish_silence(silence)
            log.info("incident %s: silenced by %s for 1h (Slack, %s)", incident.id, by, silence.id)
            return f"silenced {incident.subject_key} {incident.kind} for 1h ({silence.id})"
        if verb == ACCEPT and incident.model and incident.model_version:
            return await self._accept(incident, incident.model, incident.model_version, by, user_id)
        return Refusal(f"unknown action {verb}")

    async def _accept(
        self, incident: Incident, model: str, version: str, by: str, user_id: str | None
    ) -> str:
        if not await self.approvers.allows(user_id):  # a new baseline: an approver's call
            log.warning("accept %s: %s (%s) is not an approver", incident.id, by, user_id)
            return Refusal(
                f"{by} may not accept a model version: ask one of the approvers "
                "(FIRELINE_SLACK_APPROVERS)"
            )
        accept = ModelCommand(model=model, version=version, by=by, at=self.clock())
        await self.api.publish_model_command(accept)
        log.info("incident %s: v%s accepted by %s (Slack)", incident.id, version, by)
        return f"accept {model} v{version} by {by}"

    async def _decide(self, approval_id: str, decision: Decision, by: str) -> str:
        pending = self.api.view.approvals.get(approval_id)
        if pending is None:
            return Refusal(f"no approval {approval_id}")
        if (refusal := self.api.undecidable(pending)) is not None:
            return Refusal(refusal)
        await self.api.publish_decision(pending, decision, by)
        log.info("approval %s %s by %s (Slack)", approval_id, decision.value, by)
        return f"{decision.value} {approval_id} by {by}"


def actions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The button presses in a ``block_actions`` payload."""
    found = payload.get("actions")
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def slack_user_id(payload: dict[str, Any]) -> str | None:
    """The id of the user who pressed (``U0123``), as Slack signed it."""
    user = payload.get("user")
    found = user.get("id") if isinstance(user, dict) else None
    return found if isinstance(found, str) and found else None


def slack_user(payload: dict[str, Any]) -> str:
    """Who pressed: ``slack:<username>`` (or the user id)."""
    user = payload.get("user")
    if not isinstance(user, dict):
        return "slack"
    name = user.get("username") or user.get("name") or user.get("id") or "unknown"
    return f"slack:{name}"

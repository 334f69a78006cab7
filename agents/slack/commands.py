"""The ``/fireline`` Slack slash command: pause, resume or show the actions' kill switch.

``/fireline pause [playbook] [reason…]``, ``/fireline resume [playbook]`` and
``/fireline status``, sent by Slack to ``POST /slack/commands`` (configure the
slash command's Request URL there), verified with the signing secret like the
buttons. The user Slack names is who paused, in the audit. Anyone in the
workspace may pause (the safe direction); resuming takes a user on the Slack
approvers list (``slack.approvers``), as approving does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from aiohttp import web

from agents.incidents.action_controls import ActionControls
from agents.slack.approvers import SlackApprovers
from agents.slack.signature import read_signed_body

log = logging.getLogger(__name__)

USAGE = "usage: /fireline pause [playbook] [reason…] | resume [playbook] | status"


class SlackCommands:
    """Applies ``/fireline`` commands from Slack."""

    def __init__(
        self,
        controls: ActionControls,
        signing_secret: str | None,
        clock: Callable[[], float] = time.time,
        approvers: SlackApprovers | None = None,
    ) -> None:
        """``approvers``: who may resume from Slack (None: nobody)."""
        self.controls = controls
        self.signing_secret = signing_secret
        self.approvers = approvers or SlackApprovers(())
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        """Register ``POST /slack/commands``."""
        app.router.add_post("/slack/commands", self.command)

    async def command(self, request: web.Request) -> web.Response:
        """Check the signature, then run the command; Slack shows the answer in the channel."""
        body = await read_signed_body(request, self.signing_secret, self.clock(), "Slack commands")
        if isinstance(body, web.Response):
            return body
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        user = form.get("user_name") or form.get("user_id") or "unknown"
        text = await self.run(form.get("text", ""), f"slack:{user}", form.get("user_id"))
        return web.json_response({"response_type": "in_channel", "text": text})

    async def run(self, text: str, by: str, user_id: str | None = None) -> str:
        """Apply one command line (``pause fraud-rollback deploy freeze``); say what happened."""
        words = text.split()
        if not words or words[0] not in {"pause", "resume", "status"}:
            return USAGE
        verb, rest = words[0], words[1:]
        if verb == "status":
            paused = self.controls.report()["paused"]
            return f"paused: {', '.join(paused)}" if paused else "nothing is paused"
        playbook = rest[0] if rest and rest[0] in self.controls.playbooks() else None
        reason = " ".join(rest[1:] if playbook else rest)
        if playbook is None and rest and verb == "resume":
            return self.controls.unknown(rest[0]) or USAGE
        if verb == "resume" and not await self.approvers.allows(user_id):
            return "only a user on the approvers list (slack.approvers) may resume actions"
        pause = await self.controls.switch_to(verb == "pause", playbook, by, reason)
        what = "all actions" if playbook is None else f"playbook {playbook}"
        return f"{what} {'paused' if pause.paused else 'resumed'} by {by}"

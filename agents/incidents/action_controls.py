"""The runtime kill switch over HTTP: ``POST /actions/pause``, ``/actions/resume``, ``GET /actions/status``.

A pause or resume is published to the compacted ``fireline.action-controls``
topic (keyed by scope: ``*`` or a playbook's name), which every worker folds
into its :class:`~playbooks.kill_switch.KillSwitch`, and recorded in the
audit (``fireline.actions``) with who did it. The handler answers once its
own worker has folded the change. Slack's ``/fireline`` command calls the same
:meth:`ActionControls.switch`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agents.incidents.api import APPLY_TIMEOUT_S, bearer_denied, error
from agents.incidents.view import IncidentView
from agents.service.runtime import Publisher
from agents.settings import Topics
from playbooks.kill_switch import ALL, KillSwitch, Pause

AUDIT_KEY = b"kill-switch"


def caller(request: web.Request, body: dict[str, Any]) -> str:
    """Who is asking: for now the body's ``by`` under the shared API token.

    The one place that says it, so a token-derived identity replaces it here.
    """
    return str(body.get("by") or "api")[:200]


class ActionControls:
    """Pauses and resumes actions, fleet-wide; answers what is paused."""

    def __init__(
        self,
        switch: KillSwitch,
        view: IncidentView,
        publisher: Publisher,
        topics: Topics,
        playbooks: Callable[[], list[str]],
        api_token: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``playbooks``: the names of the loaded playbooks (one can be paused by name)."""
        self.switch = switch
        self.view = view
        self.publisher = publisher
        self.topics = topics
        self.playbooks = playbooks
        self.api_token = api_token
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on ``app``."""
        app.router.add_post("/actions/pause", self.pause)
        app.router.add_post("/actions/resume", self.resume)
        app.router.add_get("/actions/status", self.status)

    def unknown(self, playbook: str | None) -> str | None:
        """Why ``playbook`` cannot be switched (not loaded), or None."""
        if playbook is None or playbook in self.playbooks():
            return None
        loaded = ", ".join(sorted(self.playbooks())) or "none"
        return f"no playbook {playbook!r} is loaded (loaded: {loaded})"

    async def switch_to(
        self, paused: bool, playbook: str | None, by: str, reason: str = ""
    ) -> Pause:
        """Publish the switch and its audit record; return once this worker folded it."""
        pause = Pause(
            scope=playbook or ALL, paused=paused, by=by, at=self.clock(), reason=reason[:1000]
        )
        await self.publisher.publish(
            self.topics.action_controls,
            [(pause.scope.encode(), pause.model_dump_json().encode(), {})],
        )
        audit = {
            "control": "pause" if paused else "resume",
            **pause.model_dump(mode="json"),
            "playbook": "-" if playbook is None else playbook,
            "ok": True,
        }
        await self.publisher.publish(
            self.topics.actions, [(AUDIT_KEY, json.dumps(audit).encode(), {})]
        )
        await self.view.wait_for(
            lambda: self.switch.switches.get(pause.scope) == pause, APPLY_TIMEOUT_S
        )
        return pause

    def report(self) -> dict[str, Any]:
        """What is paused, and the last switch of every scope."""
        switches = sorted(self.switch.switches.values(), key=lambda p: p.scope)
        everything = self.switch.switches.get(ALL)
        return {
            "all_paused": everything is not None and everything.paused,
            "paused": [p.scope for p in switches if p.paused],
            "switches": [p.model_dump(mode="json") for p in switches],
        }

    async def pause(self, request: web.Request) -> web.Response:
        """Pause all actions, or one playbook's: body ``{"playbook", "reason", "by"}`` (optional)."""
        return await self._set(request, paused=True)

    async def resume(self, request: web.Request) -> web.Response:
        """Resume all actions, or one playbook's."""
        return await self._set(request, paused=False)

    async def status(self, request: web.Request) -> web.Response:
        """What is paused now."""
        return web.json_response(self.report())

    async def _set(self, request: web.Request, paused: bool) -> web.Response:
        denied = bearer_denied(
            request,
            self.api_token,
            disabled="changes are disabled: set FIRELINE_API_TOKEN (or api_token_file)",
            label="API token",
        )
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.read() or b"{}") if request.can_read_body else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error(400, f"request body is not JSON: {exc}")
        if not isinstance(body, dict):
            return error(400, "request body must be a JSON object")
        playbook = body.get("playbook")
        if playbook is not None and not isinstance(playbook, str):
            return error(400, "playbook must be a playbook's name (a string)")
        if (problem := self.unknown(playbook)) is not None:
            return error(404, problem)
        reason = body.get("reason") or ""
        if not isinstance(reason, str):
            return error(400, "reason must be a string")
        pause = await self.switch_to(paused, playbook, caller(request, body), reason)
        return web.json_response({"switch": pause.model_dump(mode="json"), **self.report()})

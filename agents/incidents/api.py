"""The incident HTTP API on the worker's web server.

Reads come from the worker's :class:`IncidentView`. Changes are published as
inputs to the subject's partition of ``fireline.detections`` (or to
``fireline.silences``), so the worker owning the incident applies them in order
with everything else; the handler then waits briefly for the view to show the
result. Accepting a model version goes to the model's partition of the
prediction topic instead, where its versions are compared
(agents/pipelines/model_commands.py); it is answered 202 at once. Every
endpoint needs ``Authorization: Bearer <api token>`` of a role that allows it
(agents.incidents.access); who acted is the token's name, never the body's. An
approval older than ``approval_ttl_s`` can no longer be decided: it has
expired (the worker owning it rejects it, and says so in its thread).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from agents.incidents.access import AccessPolicy, Caller, Role
from agents.incidents.silences import Silence, SilenceRequest
from agents.incidents.view import IncidentView
from agents.pipelines.model_commands import ModelCommand
from agents.service.runtime import Publisher
from agents.settings import Topics
from fireline.detections import CommandInput
from fireline.durations import human_duration, parse_duration
from fireline.incident import Incident, Status
from playbooks.approvals import ApprovalRequest, Decision, approval_expired

APPLY_TIMEOUT_S = 10.0  # how long a mutating request waits to see its own effect
MAX_LIMIT = 1000


def error(status: int, message: str) -> web.Response:
    """A JSON error body: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)


class IncidentApi:
    """Handlers for /incidents and /silences."""

    def __init__(
        self,
        view: IncidentView,
        publisher: Publisher,
        topics: Topics,
        access: AccessPolicy,
        clock: Callable[[], float] = time.time,
        approval_ttl_s: float = 0.0,
    ) -> None:
        """``approval_ttl_s``: how long an approval can be decided; 0 forever."""
        self.view = view
        self.publisher = publisher
        self.topics = topics
        self.access = access
        self.clock = clock
        self.approval_ttl_s = approval_ttl_s

    def add_routes(self, app: web.Application) -> None:
        """Register the routes on ``app``."""
        app.router.add_get("/incidents", self.list_incidents)
        app.router.add_get("/incidents/{id}", self.show_incident)
        app.router.add_post("/incidents/{id}/ack", self.acknowledge)
        app.router.add_post("/incidents/{id}/resolve", self.resolve)
        app.router.add_get("/silences", self.list_silences)
        app.router.add_post("/silences", self.add_silence)
        app.router.add_delete("/silences/{id}", self.remove_silence)
        app.router.add_get("/approvals", self.list_approvals)
        app.router.add_post("/approvals/{id}/approve", self.approve)
        app.router.add_post("/approvals/{id}/reject", self.reject)
        app.router.add_post("/models/{model}/versions/{version}/accept", self.accept_version)

    # -- reads ------------------------------------------------------------------------

    async def list_incidents(self, request: web.Request) -> web.Response:
        """Incidents, newest first.

        Filters: status (open, acknowledged, resolved, active), model and service
        (globs), since (epoch seconds or a duration like 1h), limit.
        """
        if isinstance(caller := self.access.require(request, Role.VIEWER), web.Response):
            return caller
        query = request.query
        status = query.get("status")
        if status is not None and status not in {*(s.value for s in Status), "active"}:
            return error(400, "status must be one of open, acknowledged, resolved, active")
        try:
            since = _since(query.get("since"), self.clock())
            limit = int(query.get("limit", "100"))
        except ValueError as exc:
            return error(400, str(exc))
        if not 1 <= limit <= MAX_LIMIT:
            return error(400, f"limit must be between 1 and {MAX_LIMIT}")
        found = [
            i
            for i in self.view.incidents.values()
            if _status_matches(i, status)
            and _glob(i.model, query.get("model"))
            and _glob(i.service, query.get("service"))
            and (since is None or i.last_seen >= since)
        ]
        found.sort(key=lambda i: i.last_seen, reverse=True)
        return web.json_response({"incidents": [_dump(i) for i in found[:limit]]})

    async def show_incident(self, request: web.Request) -> web.Response:
        """One incident, its latest state."""
        if isinstance(caller := self.access.require(request, Role.VIEWER), web.Response):
            return caller
        incident = self.view.incidents.get(request.match_info["id"])
        if incident is None:
            return error(404, f"no incident {request.match_info['id']}")
        return web.json_response(_dump(incident))

    async def list_silences(self, request: web.Request) -> web.Response:
        """All silences; ``?active=true`` only those in force now."""
        if isinstance(caller := self.access.require(request, Role.VIEWER), web.Response):
            return caller
        now = self.clock()
        silences = self.view.silence_list()
        if request.query.get("active") in {"1", "true", "yes"}:
            silences = [s for s in silences if s.active(now)]
        silences.sort(key=lambda s: s.ends_at)
        return web.json_response(
            {"silences": [{**s.model_dump(mode="json"), "active": s.active(now)} for s in silences]}
        )

    # -- changes ----------------------------------------------------------------------

    async def acknowledge(self, request: web.Request) -> web.Response:
        """Acknowledge an open incident, as the token's name (a ``by`` in the body is ignored)."""
        return await self._command(request, "acknowledge")

    async def resolve(self, request: web.Request) -> web.Response:
        """Resolve an open or acknowledged incident by hand."""
        return await self._command(request, "resolve")

    async def _command(self, request: web.Request, command: str) -> web.Response:
        if isinstance(caller := self.access.require(request, Role.RESPONDER), web.Response):
            return caller
        incident_id = request.match_info["id"]
        incident = self.view.incidents.get(incident_id)
        if incident is None:
            return error(404, f"no incident {incident_id}")
        if not incident.is_open:
            return error(409, f"incident {incident_id} is already resolved")
        if command == "acknowledge" and incident.status is Status.ACKNOWLEDGED:
            return error(409, f"incident {incident_id} is already acknowledged")
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        await self.publish_command(incident, command, caller.name)
        revision = incident.revision

        def applied() -> bool:
            return self.view.incidents[incident_id].revision > revision

        if await self.view.wait_for(applied, APPLY_TIMEOUT_S):
            return web.json_response(_dump(self.view.incidents[incident_id]))
        return web.json_response({"accepted": True, "id": incident_id}, status=202)

    async def publish_command(self, incident: Incident, command: str, by: str) -> None:
        """Send ``command`` (acknowledge, resolve) to the worker owning ``incident``."""
        message = CommandInput(command=command, incident_id=incident.id, by=by)
        await self.publisher.publish(
            self.topics.detections,
            [(incident.subject_key.encode(), message.model_dump_json().encode(), {})],
        )

    async def accept_version(self, request: web.Request) -> web.Response:
        """Accept a model version as its baseline now (an approver's call; no body needed).

        202: the worker comparing the model's versions applies it in order with
        the model's predictions; an open ``version_regression`` of the version
        then clears and its incident resolves.
        """
        if isinstance(caller := self.access.require(request, Role.APPROVER), web.Response):
            return caller
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            command = ModelCommand(
                model=request.match_info["model"],
                version=request.match_info["version"],
                by=caller.name,
                at=self.clock(),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            return error(400, f"invalid accept: {problems}")
        await self.publish_model_command(command)
        return web.json_response({"accepted": command.model_dump(mode="json")}, status=202)

    async def publish_model_command(self, command: ModelCommand) -> None:
        """Send ``command`` to the worker comparing the model's versions, among its predictions."""
        await self.publisher.publish(self.topics.predictions, [command.to_record()])

    async def publish_silence(self, silence: Silence) -> None:
        """Publish a new silence; every worker's view and incident manager picks it up."""
        await self.publisher.publish(
            self.topics.silences,
            [(silence.id.encode(), silence.model_dump_json().encode(), {})],
        )

    async def publish_decision(
        self, pending: ApprovalRequest, decision: Decision, by: str
    ) -> ApprovalRequest:
        """Publish a human's decision on a waiting step; its playbook resumes or stops."""
        decided = pending.decided(decision, by, self.clock())
        await self.publisher.publish(
            self.topics.approvals,
            [(pending.incident.id.encode(), decided.model_dump_json().encode(), {})],
        )
        return decided

    async def add_silence(self, request: web.Request) -> web.Response:
        """Create a silence from a :class:`SilenceRequest` body; 201 with the silence.

        ``created_by`` is the token's name, whatever the body says.
        """
        if isinstance(caller := self.access.require(request, Role.RESPONDER), web.Response):
            return caller
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            wanted = SilenceRequest.model_validate(body)
            silence = wanted.model_copy(update={"created_by": caller.name}).to_silence(self.clock())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            return error(400, f"invalid silence: {problems}")
        except ValueError as exc:
            return error(400, f"invalid silence: {exc}")
        await self.publish_silence(silence)
        await self.view.wait_for(lambda: silence.id in self.view.silences, APPLY_TIMEOUT_S)
        return web.json_response(silence.model_dump(mode="json"), status=201)

    async def remove_silence(self, request: web.Request) -> web.Response:
        """Remove a silence now (its incidents notify again from the next tick)."""
        if isinstance(caller := self.access.require(request, Role.RESPONDER), web.Response):
            return caller
        silence_id = request.match_info["id"]
        if silence_id not in self.view.silences:
            return error(404, f"no silence {silence_id}")
        await self.publisher.publish(self.topics.silences, [(silence_id.encode(), b"", {})])
        await self.view.wait_for(lambda: silence_id not in self.view.silences, APPLY_TIMEOUT_S)
        return web.json_response({"removed": silence_id})

    async def list_approvals(self, request: web.Request) -> web.Response:
        """Approval requests, newest first; ``?status=pending|approved|rejected``."""
        if isinstance(caller := self.access.require(request, Role.VIEWER), web.Response):
            return caller
        status = request.query.get("status")
        if status is not None and status not in {d.value for d in Decision}:
            return error(400, "status must be one of pending, approved, rejected")
        found = [
            a for a in self.view.approvals.values() if status is None or a.status.value == status
        ]
        found.sort(key=lambda a: a.requested_at, reverse=True)
        return web.json_response({"approvals": [a.model_dump(mode="json") for a in found]})

    async def approve(self, request: web.Request) -> web.Response:
        """Approve a waiting step as the token's name (approver role); the playbook resumes."""
        return await self._decide(request, Decision.APPROVED)

    async def reject(self, request: web.Request) -> web.Response:
        """Reject a waiting step; its playbook stops there."""
        return await self._decide(request, Decision.REJECTED)

    async def _decide(self, request: web.Request, decision: Decision) -> web.Response:
        if isinstance(caller := self.access.require(request, Role.APPROVER), web.Response):
            return caller
        approval_id = request.match_info["id"]
        pending = self.view.approvals.get(approval_id)
        if pending is None:
            return error(404, f"no approval {approval_id}")
        if (refusal := self.undecidable(pending)) is not None:
            return error(409, refusal)
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        await self.publish_decision(pending, decision, caller.name)
        await self.view.wait_for(
            lambda: self.view.approvals[approval_id].status is decision, APPLY_TIMEOUT_S
        )
        return web.json_response(self.view.approvals[approval_id].model_dump(mode="json"))

    def undecidable(self, pending: ApprovalRequest) -> str | None:
        """Why ``pending`` can no longer be approved or rejected (decided, expired), or None."""
        if pending.status is not Decision.PENDING:
            return f"approval {pending.id} was already {pending.status.value}"
        if approval_expired(pending, self.approval_ttl_s, self.clock()):
            took = human_duration(self.approval_ttl_s)
            return (
                f"approval {pending.id} expired: nobody decided within {took}; "
                "it counts as rejected"
            )
        return None

    def caller(self, request: web.Request, role: Role) -> Caller | web.Response:
        """Who is calling, when their token allows ``role``; else the 401/403 answer."""
        return self.access.require(request, role)


def bearer_denied(
    request: web.Request, expected: str | None, *, disabled: str, label: str
) -> web.Response | None:
    """A 401 unless the request carries ``Authorization: Bearer <expected>``; None if it does.

    ``disabled`` is the answer when no token is configured; ``label`` names the
    token in the other answers (``API token``: ``wrong API token``).
    """
    if expected is None:
        return error(401, disabled)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return error(401, f"missing Authorization: Bearer <{label.lower()}>")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return error(401, f"wrong {label}")
    return None


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.read() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error(400, f"request body is not JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "request body must be a JSON object")
    return body


def _status_matches(incident: Incident, status: str | None) -> bool:
    if status is None:
        return True
    if status == "active":
        return incident.is_open
    return incident.status.value == status


def _glob(value: str | None, pattern: str | None) -> bool:
    return pattern is None or (value is not None and fnmatchcase(value, pattern))


def _since(text: str | None, now: float) -> float | None:
    """``since`` as epoch seconds, or a duration back from now (``1h``)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except ValueError:
            raise ValueError(
                f"since must be epoch seconds or a duration like 1h, got {text!r}"
            ) from None
    return value


def _dump(incident: Incident) -> dict[str, Any]:
    body = incident.model_dump(mode="json")
    body["notify"] = incident.notify
    return body

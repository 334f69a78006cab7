"""Roles on the incident API over real HTTP (aiohttp's loopback test server).

The publisher folds what the API publishes back into the view, as the worker's
view follower would, so each change answers at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.incidents.access import AccessPolicy, load_tokens_file, token_hash
from agents.incidents.action_controls import ActionControls
from agents.incidents.alert_intake import AlertIntake
from agents.incidents.api import IncidentApi
from agents.incidents.view import IncidentView
from agents.service.http import Readiness, build_web_app
from agents.service.openapi import worker_openapi
from agents.settings import Topics
from agents.slack.commands import SlackCommands
from agents.slack.interactions import SlackInteractions
from fireline.detections import CommandInput
from fireline.errors import ConfigError
from fireline.incident import Status
from playbooks.approvals import ApprovalRequest
from tests.factories import make_incident

NOW = 1795255300.0
TOKENS = {"vera": "viewer-token", "rory": "responder-token", "alma": "approver-token"}
ROLES = {"vera": "viewer", "rory": "responder", "alma": "approver"}
from playbooks.kill_switch import KillSwitch


class FoldingPublisher:
    """Applies what the API publishes to the view, as the worker's follower would."""

    def __init__(self, view: IncidentView, topics: Topics) -> None:
        self.view = view
        self.topics = topics
        self.commands: list[dict[str, Any]] = []

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes, Any]]) -> None:
        for key, value, _ in records:
            if topic == self.topics.approvals:
                self.view.apply_approval(value)
            elif topic == self.topics.silences:
                self.view.apply_silence(key, value)
            elif topic == self.topics.detections:
                command = CommandInput.model_validate_json(value)
                self.commands.append(command.model_dump())
                incident = self.view.incidents[command.incident_id]
                self.view.incidents[incident.id] = incident.model_copy(
                    update={
                        "status": Status.ACKNOWLEDGED,
                        "acknowledged_by": command.by,
                        "revision": incident.revision + 1,
                    }
                )
        await self.view.notify()


def write_tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        "".join(
            f"{name}: {{role: {ROLES[name]}, sha256: {token_hash(token)}}}\n"
            for name, token in TOKENS.items()
        )
    )
    return path


def approval(requested_at: float = NOW - 60) -> ApprovalRequest:
    return ApprovalRequest(
        id="apr-1",
        incident=make_incident(),
        playbook="rollback",
        step_index=0,
        step="roll back",
        action="rollback",
        requested_at=requested_at,
    )


async def ready() -> Readiness:
    return Readiness({"broker": False}, ["broker kafka-0.internal:9092 unreachable"])


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    view = IncidentView()
    incident = make_incident()
    view.incidents[incident.id] = incident
    view.approvals["apr-1"] = approval()
    view.approvals["apr-old"] = approval(NOW - 7200).model_copy(update={"id": "apr-old"})
    topics = Topics()
    access = AccessPolicy.from_tokens(write_tokens(tmp_path), legacy_admin_token="admin-token")
    api = IncidentApi(view, FoldingPublisher(view, topics), topics, access, lambda: NOW, 3600)
    app = build_web_app(CollectorRegistry(), ready, api.add_routes, details_for=access.lets_read)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def bearer(name: str) -> dict[str, str]:
    token = "admin-token" if name == "admin" else TOKENS[name]
    return {"Authorization": f"Bearer {token}"}


async def test_reads__need_a_viewer_token_once_tokens_are_configured(client):
    for path in ("/incidents", "/incidents/inc-0123456789abcdef", "/silences", "/approvals"):
        response = await client.get(path)
        assert (response.status, await response.json()) == (
            401,
            {"error": "missing Authorization: Bearer <api token>"},
        ), path
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert (wrong.status, await wrong.json()) == (401, {"error": "wrong API token"})
        assert (await client.get(path, headers=bearer("vera"))).status == 200, path


async def test_acknowledge__is_by_the_tokens_name_and_a_forged_by_is_ignored(client):
    response = await client.post(
        "/incidents/inc-0123456789abcdef/ack", json={"by": "mallory"}, headers=bearer("rory")
    )

    body = await response.json()
    assert (response.status, body["status"], body["acknowledged_by"]) == (
        200,
        "acknowledged",
        "rory",
    )


async def test_changes__a_viewer_may_not_acknowledge_and_a_responder_may_not_approve(client):
    ack = await client.post("/incidents/inc-0123456789abcdef/ack", headers=bearer("vera"))
    assert (ack.status, await ack.json()) == (
        403,
        {"error": "token 'vera' is a viewer; this needs responder or above"},
    )
    for verb in ("approve", "reject"):
        response = await client.post(f"/approvals/apr-1/{verb}", headers=bearer("rory"))
        assert (response.status, await response.json()) == (
            403,
            {"error": "token 'rory' is a responder; this needs approver or above"},
        )


async def test_approve__by_an_approver_records_its_name_not_the_bodys(client):
    response = await client.post(
        "/approvals/apr-1/approve", json={"by": "mallory"}, headers=bearer("alma")
    )

    body = await response.json()
    assert (response.status, body["status"], body["decided_by"]) == (200, "approved", "alma")
    again = await client.post("/approvals/apr-1/reject", headers=bearer("admin"))
    assert (again.status, await again.json()) == (
        409,
        {"error": "approval apr-1 was already approved"},
    )


async def test_approve__after_the_deadline_is_refused_as_expired(client):
    response = await client.post("/approvals/apr-old/approve", headers=bearer("alma"))

    assert (response.status, await response.json()) == (
        409,
        {"error": "approval apr-old expired: nobody decided within 60 min; it counts as rejected"},
    )


async def test_silence__is_created_by_the_tokens_name(client):
    response = await client.post(
        "/silences",
        json={"matchers": {"model": "fraud"}, "duration": "1h", "created_by": "mallory"},
        headers=bearer("rory"),
    )

    assert response.status == 201
    assert (await response.json())["created_by"] == "rory"


async def test_readyz__details_only_for_a_caller_who_may_read(client):
    anonymous = await client.get("/readyz")
    assert (anonymous.status, await anonymous.json()) == (503, {"ready": False})
    viewer = await client.get("/readyz", headers=bearer("vera"))
    assert (await viewer.json())["problems"] == ["broker kafka-0.internal:9092 unreachable"]


async def test_no_tokens__reads_are_open_and_changes_refused():
    view = IncidentView()
    topics = Topics()
    api = IncidentApi(view, FoldingPublisher(view, topics), topics, AccessPolicy({}))
    access = AccessPolicy({})
    app = build_web_app(CollectorRegistry(), ready, api.add_routes, details_for=access.lets_read)
    async with TestClient(TestServer(app)) as test_client:
        assert (await test_client.get("/incidents")).status == 200
        assert "problems" in await (await test_client.get("/readyz")).json()
        refused = await test_client.post("/silences", json={})
        assert (refused.status, await refused.json()) == (
            401,
            {"error": "changes are disabled: set FIRELINE_API_TOKENS_PATH or FIRELINE_API_TOKEN"},
        )


async def test_unexpected_errors__answer_json_500():
    async def broken(_: web.Request) -> web.Response:
        raise KeyError("bug")

    app = build_web_app(CollectorRegistry(), ready, lambda a: a.router.add_get("/broken", broken))
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/broken")
        assert (response.status, await response.json()) == (
            500,
            {"error": "internal error (logged by the worker)"},
        )


def test_tokens_file__names_what_is_wrong(tmp_path: Path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"ci": {"role": "root", "sha256": token_hash("x")}}))
    with pytest.raises(ConfigError, match=r"token 'ci': role: String should match pattern"):
        load_tokens_file(path)
    path.write_text(json.dumps({"ci": {"role": "viewer", "sha256": "s3cret"}}))
    with pytest.raises(ConfigError, match=r"token 'ci': sha256: String should match pattern"):
        load_tokens_file(path)
    path.write_text("[]")
    with pytest.raises(ConfigError, match=r"expected name: \{role, sha256\} entries"):
        load_tokens_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens_file(tmp_path / "missing.yaml")


def test_openapi__describes_exactly_the_routes_the_worker_serves():
    view = IncidentView()
    publisher = FoldingPublisher(view, Topics())
    api = IncidentApi(view, publisher, Topics(), AccessPolicy({}))

    def add_routes(app: web.Application) -> None:  # as the worker adds them
        api.add_routes(app)
        SlackInteractions(api, None).add_routes(app)
        AlertIntake(publisher, "fireline.detections", None).add_routes(app)
        controls = ActionControls(KillSwitch(), view, publisher, Topics(), list, AccessPolicy({}))
        controls.add_routes(app)
        SlackCommands(controls, None).add_routes(app)

    app = build_web_app(CollectorRegistry(), ready, add_routes)
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    described = {
        (path, method) for path, item in worker_openapi()["paths"].items() for method in item
    }
    assert served == described

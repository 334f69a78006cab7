"""webhook, pagerduty, rollback http and retrain http against a real loopback HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.kafka.broker import free_port
from agents.service.worker import HttpSessionService
from fireline.errors import ActionError
from fireline.incident import Transition
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.http_sessions import SharedSession
from playbooks.registry import ActionResult
from tests.factories import make_incident
from tests.integration.http_recorder import Recorder, recording_server

SECRET = "whsec-test-never-in-results"


@pytest.fixture
async def server() -> AsyncIterator[Recorder]:
    async with recording_server() as recorder:
        yield recorder


async def run(
    action: str, params: dict[str, Any], context: ActionContext | None = None, **incident: Any
) -> ActionResult:
    registered = default_registry().get(action)
    validated = registered.params_model.model_validate(params)
    return await registered.run(make_incident(**incident), validated, context or ActionContext())


async def test_http__the_workers_shared_session_carries_every_call(server):
    shared = SharedSession()
    await shared.open()
    try:
        context = ActionContext(http=shared)
        for _ in range(3):
            assert (await run("webhook", {"url": server.url("/h")}, context)).ok
    finally:
        await shared.close()
    # One pooled connection for all three calls; a session per call opens one each.
    assert len({r.client_port for r in server.requests}) == 1
    for _ in range(2):
        assert (await run("webhook", {"url": server.url("/h")})).ok
    assert len({r.client_port for r in server.requests[3:]}) == 2


async def test_http__the_worker_opens_the_shared_session_on_start_and_closes_it_on_stop(server):
    shared = SharedSession()
    service = HttpSessionService(shared)
    context = ActionContext(http=shared)
    await service.start()
    try:
        assert (await run("webhook", {"url": server.url("/h")}, context)).ok
    finally:
        await service.stop()
    with pytest.raises(ActionError, match="the worker's HTTP session is not open"):
        await run("webhook", {"url": server.url("/h")}, context)
    assert len(server.requests) == 1


async def test_http__a_closed_shared_session_is_an_action_error_not_a_new_session(server):
    shared = SharedSession()
    with pytest.raises(ActionError, match="the worker's HTTP session is not open"):
        await run("webhook", {"url": server.url("/h")}, ActionContext(http=shared))
    await shared.open()
    await shared.close()
    with pytest.raises(ActionError, match="the worker's HTTP session is not open"):
        await run("webhook", {"url": server.url("/h")}, ActionContext(http=shared))
    assert server.requests == []


async def test_webhook__posts_the_incident_signed_over_the_exact_body(server, monkeypatch):
    monkeypatch.setenv("FL_WEBHOOK_SECRET", SECRET)
    result = await run("webhook", {"url": server.url("/hook"), "secret_env": "FL_WEBHOOK_SECRET"})
    assert result.ok, result.detail
    assert result.target == f"127.0.0.1:{server.port}/hook"
    [sent] = server.requests
    assert sent.json()["id"] == "inc-0123456789abcdef"
    assert sent.headers["Content-Type"] == "application/json"
    timestamp = sent.headers["X-Fireline-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    # Verified independently of playbooks.actions.signing: the receiver's own HMAC.
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + sent.body, hashlib.sha256)
    assert sent.headers["X-Fireline-Signature"] == f"sha256={mac.hexdigest()}"
    assert SECRET not in repr(result)


async def test_webhook__custom_body_and_headers_unsigned(server):
    params = {"url": server.url("/h"), "body": {"text": "hi"}, "headers": {"X-Team": "ml"}}
    result = await run("webhook", params)
    assert result.ok
    [sent] = server.requests
    assert sent.json() == {"text": "hi"}
    assert sent.headers["X-Team"] == "ml"
    assert "X-Fireline-Signature" not in sent.headers


async def test_webhook__non_2xx_is_a_failed_result_with_status_and_masked_excerpt(
    server, monkeypatch
):
    monkeypatch.setenv("FL_WEBHOOK_SECRET", SECRET)
    server.status, server.reply = 500, {"error": f"boom, your secret was {SECRET}"}
    result = await run("webhook", {"url": server.url("/h"), "secret_env": "FL_WEBHOOK_SECRET"})
    assert not result.ok
    assert result.detail.startswith(f"POST 127.0.0.1:{server.port}/h failed: HTTP 500: ")
    assert "boom" in result.detail
    assert SECRET not in result.detail


async def test_webhook__timeout_and_refused_connection_are_failed_results(server):
    server.delay_s = 2.0
    slow = await run("webhook", {"url": server.url("/h"), "timeout_s": 0.3})
    assert not slow.ok
    assert slow.detail.endswith(f"no answer from 127.0.0.1:{server.port}/h within 0.3s")
    refused = await run("webhook", {"url": f"http://127.0.0.1:{free_port()}/h"})
    assert not refused.ok
    assert "unreachable: " in refused.detail


async def test_webhook__missing_secret_variable_is_an_action_error(server, monkeypatch):
    monkeypatch.delenv("FL_NOT_SET", raising=False)
    with pytest.raises(ActionError, match="secret_env names the environment variable FL_NOT_SET"):
        await run("webhook", {"url": server.url("/h"), "secret_env": "FL_NOT_SET"})
    assert server.requests == []


async def test_pagerduty__trigger_then_resolve_with_the_same_dedup_key(server, tmp_path):
    (tmp_path / "rk").write_text("R0UTINGKEY\n")
    server.status, server.reply = 202, {"status": "success", "message": "Event processed"}
    params = {"url": server.url("/v2/enqueue"), "routing_key_file": str(tmp_path / "rk")}
    opened = await run("pagerduty", params)
    resolved = await run("pagerduty", params, transition=Transition.RESOLVED)
    assert opened.ok and resolved.ok, (opened.detail, resolved.detail)
    assert opened.target == f"127.0.0.1:{server.port}/v2/enqueue"
    trigger, resolve = (r.json() for r in server.requests)
    assert trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "inc-0123456789abcdef"
    assert trigger["payload"]["summary"] == "latency_ms of fraud-api is 5x its baseline"
    assert trigger["payload"]["severity"] == "critical"
    assert resolve == {
        "routing_key": "R0UTINGKEY",
        "event_action": "resolve",
        "dedup_key": "inc-0123456789abcdef",
    }
    assert "R0UTINGKEY" not in repr(opened) + repr(resolved)


async def test_pagerduty__rejected_event_is_a_failed_result(server, monkeypatch):
    monkeypatch.setenv("FL_PD_KEY", "R0UTINGKEY")
    server.status, server.reply = 400, {"status": "invalid event", "errors": ["bad"]}
    result = await run(
        "pagerduty", {"url": server.url("/v2/enqueue"), "routing_key_env": "FL_PD_KEY"}
    )
    assert not result.ok
    assert result.detail.startswith("trigger for inc-0123456789abcdef failed: HTTP 400: ")


async def test_rollback_http__posts_model_current_and_target_version(server, monkeypatch):
    monkeypatch.setenv("FL_DEPLOYER_TOKEN", "dep-token")
    params = {
        "provider": "http",
        "url": server.url("/rollback"),
        "to_version": "2",
        "token_env": "FL_DEPLOYER_TOKEN",
    }
    result = await run("rollback", params)
    assert result.ok, result.detail
    assert result.target == "fraud"
    assert (
        result.detail
        == f"rollback fraud v3 → v2 requested from 127.0.0.1:{server.port}/rollback (HTTP 200)"
    )
    [sent] = server.requests
    assert sent.headers["Authorization"] == "Bearer dep-token"
    body = sent.json()
    assert {k: body[k] for k in ("command", "model", "current_version", "target_version")} == {
        "command": "rollback",
        "model": "fraud",
        "current_version": "3",
        "target_version": "2",
    }
    assert body["incident"]["id"] == "inc-0123456789abcdef"


async def test_retrain_http__airflow_dag_run_with_basic_auth(server, tmp_path):
    (tmp_path / "airflow").write_text("admin:pw")
    server.reply = {"dag_run_id": "x", "state": "queued"}
    params = {
        "provider": "http",
        "url": server.url("/api/v1/dags/retrain_fraud/dagRuns"),
        "auth": "basic",
        "token_file": str(tmp_path / "airflow"),
    }
    result = await run("retrain", params, revision=2)
    assert result.ok, result.detail
    assert result.target == f"127.0.0.1:{server.port}/api/v1/dags/retrain_fraud/dagRuns"
    [sent] = server.requests
    assert sent.path == "/api/v1/dags/retrain_fraud/dagRuns"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()
    body = sent.json()
    assert body["dag_run_id"] == "fireline-inc-0123456789abcdef-r2"
    assert body["conf"]["incident"]["model"] == "fraud"


async def test_retrain_http__existing_dag_run_409_is_an_ok_result_saying_so(server):
    # A redelivered step (reconciled after a crash) asks again: Airflow refuses the same
    # dag_run_id with 409, which means the job was requested, not that it failed.
    server.status, server.reply = 409, {"title": "DAGRun already exists"}
    result = await run("retrain", {"provider": "http", "url": server.url("/api/v1/dags/d/dagRuns")})
    assert result.ok
    assert result.detail.startswith("job already requested for this incident event: ")


async def test_retrain_http__with_a_custom_body_409_is_a_failed_result(server):
    server.status, server.reply = 409, {"title": "conflict"}
    params = {"provider": "http", "url": server.url("/jobs"), "body": {"job": "retrain"}}
    result = await run("retrain", params)
    assert not result.ok
    assert "HTTP 409: " in result.detail and "conflict" in result.detail

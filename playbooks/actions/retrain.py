"""The ``retrain`` action: start a retraining job over HTTP, as a local command, or via Kafka."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, HttpUrl, model_validator

from fireline.incident import Incident
from playbooks.actions.command import run_command
from playbooks.actions.events import incident_json, publish_event
from playbooks.actions.http import idempotency_headers, json_bytes, request, url_target
from playbooks.actions.providers import check_provider_fields
from playbooks.actions.secrets import read_secret
from playbooks.context import ActionContext
from playbooks.registry import (
    ActionParams,
    ActionRegistry,
    ActionResult,
    Reconciliation,
    Verdict,
    cannot_tell,
)

_ALLOWED = {
    "http": {"url", "body", "headers", "auth", "token_env", "token_file", "timeout_s"},
    "command": {"argv", "cwd", "env", "timeout_s"},
    "kafka": {"topic", "model"},
}
_REQUIRED = {"http": {"url"}, "command": {"argv"}, "kafka": {"topic"}}


class RetrainParams(ActionParams):
    """Params of the ``retrain`` action; which apply depends on ``provider``."""

    provider: Literal["http", "command", "kafka"] = Field(description="How the job starts.")
    url: HttpUrl | None = Field(
        default=None, description="http: e.g. Airflow's /api/v1/dags/<dag_id>/dagRuns."
    )
    body: dict[str, Any] | None = Field(
        default=None,
        description="http: JSON to send; default: Airflow's {dag_run_id, conf: {incident}}.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="http: extra headers.")
    auth: Literal["bearer", "basic"] = Field(
        default="bearer", description="http: how the secret is sent (basic: 'user:password')."
    )
    token_env: str | None = Field(default=None, description="http: env var holding the secret.")
    token_file: Path | None = Field(default=None, description="http: file holding the secret.")
    argv: list[str] | None = Field(
        default=None, min_length=1, description="command: program and arguments (no shell)."
    )
    cwd: Path | None = Field(default=None, description="command: working directory.")
    env: dict[str, str] = Field(
        default_factory=dict, description="command: variables added to the worker's environment."
    )
    timeout_s: float = Field(default=30.0, gt=0, le=3600, description="Request/command timeout.")
    topic: str | None = Field(default=None, description="kafka: where the request goes.")
    model: str | None = Field(default=None, description="kafka: model; default: the incident's.")

    @model_validator(mode="after")
    def _fits_provider(self) -> Self:
        check_provider_fields(self, self.provider, _ALLOWED, _REQUIRED)
        return self


def airflow_body(incident: Incident) -> dict[str, Any]:
    """An Airflow dagRuns body; the run id makes a redelivered event a 409, not a 2nd run."""
    return {
        "dag_run_id": f"fireline-{incident.id}-r{incident.revision}",
        "conf": {"incident": incident_json(incident)},
    }


def _auth_header(scheme: str, secret: str) -> str:
    if scheme == "basic":
        return "Basic " + base64.b64encode(secret.encode()).decode()
    return f"Bearer {secret}"


def register(registry: ActionRegistry) -> None:
    """Add the retrain action to ``registry``."""

    @registry.action("retrain")
    async def retrain(
        incident: Incident, params: RetrainParams, context: ActionContext
    ) -> ActionResult:
        if params.provider == "http":
            return await _http(incident, params, context)
        if params.provider == "command":
            return await _command(incident, params)
        assert params.topic is not None  # checked by the params model
        request_event = {
            "command": "retrain",
            "model": params.model or incident.model,
            "model_version": incident.model_version,
            "incident_id": incident.id,
            "incident": incident_json(incident),
        }
        return await publish_event("retrain", context, params.topic, incident, request_event)

    @registry.reconciler("retrain")
    async def reconcile_retrain(
        incident: Incident, params: RetrainParams, context: ActionContext
    ) -> Reconciliation:
        if params.provider != "http":
            return await cannot_tell(incident, params, context)  # a command or a record: no key
        key = "Airflow's dag_run_id" if params.body is None else "the same Idempotency-Key"
        return Reconciliation(Verdict.REPEAT, f"requested again with {key}: started once")


async def _http(incident: Incident, params: RetrainParams, context: ActionContext) -> ActionResult:
    url = str(params.url)
    target = url_target(url)
    secret = read_secret(params.token_env, params.token_file, "token")
    headers = dict(params.headers) | idempotency_headers(context)
    if secret:
        headers["Authorization"] = _auth_header(params.auth, secret)
    body = json_bytes(params.body if params.body is not None else airflow_body(incident))
    reply = await request(context, "POST", url, params.timeout_s, body=body, headers=headers)
    if reply.status == 409 and params.body is None:  # Airflow: this dag_run_id exists
        detail = f"job already requested for this incident event: POST {target}: HTTP 409"
        return ActionResult("retrain", ok=True, detail=detail, target=target)
    if not reply.ok:
        detail = f"POST {target} failed: {reply.describe(redact=[secret or ''])}"
        return ActionResult("retrain", ok=False, detail=detail, target=target)
    return ActionResult(
        "retrain",
        ok=True,
        detail=f"job requested: POST {target}: HTTP {reply.status}",
        target=target,
    )


async def _command(incident: Incident, params: RetrainParams) -> ActionResult:
    assert params.argv is not None  # checked by the params model
    target = params.argv[0]
    stdin = json_bytes(incident_json(incident))
    finished = await run_command(params.argv, stdin, params.timeout_s, params.cwd, params.env)
    tails = f" ({finished.tails()})" if finished.tails() else ""
    if finished.returncode is None:
        detail = f"{target} killed after {params.timeout_s:g}s{tails}"
        return ActionResult("retrain", ok=False, detail=detail, target=target)
    if finished.returncode != 0:
        detail = f"{target} exited with {finished.returncode}{tails}"
        return ActionResult("retrain", ok=False, detail=detail, target=target)
    return ActionResult("retrain", ok=True, detail=f"{target} exited 0{tails}", target=target)

"""The ``rollback`` action: put the previous model version back, via MLflow, HTTP or Kafka."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, HttpUrl, model_validator

from fireline.errors import ActionError
from fireline.incident import Incident
from playbooks.actions.events import incident_json, publish_event
from playbooks.actions.http import idempotency_headers, json_bytes, request, url_target
from playbooks.actions.mlflow import MlflowFailure, MlflowRegistry, previous_version
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

_COMMON = {"model", "to_version"}
_ALLOWED = {
    "mlflow": _COMMON
    | {"tracking_uri", "alias", "token_env", "token_file", "timeout_s", "check_version"},
    "http": _COMMON | {"url", "headers", "token_env", "token_file", "timeout_s"},
    "kafka": _COMMON | {"topic"},
}
_REQUIRED = {"http": {"url"}, "kafka": {"topic"}}


class RollbackParams(ActionParams):
    """Params of the ``rollback`` action; which apply depends on ``provider``."""

    provider: Literal["mlflow", "http", "kafka"] = Field(description="Who rolls back.")
    model: str | None = Field(default=None, description="Model name; default: the incident's.")
    to_version: str | None = Field(
        default=None, description="Version to go back to; default: the previous one."
    )
    tracking_uri: HttpUrl | None = Field(
        default=None, description="mlflow: the tracking server; default: $MLFLOW_TRACKING_URI."
    )
    alias: str = Field(default="champion", description="mlflow: the alias to move back.")
    check_version: bool = Field(
        default=True,
        description="mlflow: do nothing when the alias no longer points at the incident's "
        "model_version (already rolled back, or redeployed since).",
    )
    url: HttpUrl | None = Field(default=None, description="http: the deployer's endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="http: extra headers.")
    token_env: str | None = Field(default=None, description="Env var holding a bearer token.")
    token_file: Path | None = Field(default=None, description="File holding a bearer token.")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Per-request timeout.")
    topic: str | None = Field(default=None, description="kafka: where the command goes.")

    def resolved(self, incident: Incident, context: ActionContext) -> Self:
        """The model defaults to the incident's."""
        return self.model_copy(update={"model": self.model or incident.model})

    @model_validator(mode="after")
    def _fits_provider(self) -> Self:
        check_provider_fields(self, self.provider, _ALLOWED, _REQUIRED)
        if self.provider == "mlflow" and self.to_version and not self.to_version.isdigit():
            raise ValueError(
                f"to_version must be an MLflow version number, got {self.to_version!r}"
            )
        return self


def rollback_target(incident: Incident, model: str, to_version: str | None) -> str | None:
    """``to_version``, else the version this model had before its latest change, if known."""
    if to_version is not None:
        return to_version
    for change in reversed(incident.changes):
        if change.model == model and change.previous_version:
            return change.previous_version
    return None


def _model(incident: Incident, params: RollbackParams) -> str:
    model = params.model
    if not model:
        raise ActionError(
            f"rollback: incident {incident.id} names no model; set the step's model param"
        )
    return model


def register(registry: ActionRegistry) -> None:
    """Add the rollback action to ``registry``."""

    @registry.action("rollback")
    async def rollback(
        incident: Incident, params: RollbackParams, context: ActionContext
    ) -> ActionResult:
        params = params.resolved(incident, context)
        model = _model(incident, params)
        if params.provider == "mlflow":
            return await _mlflow(incident, params, context, model)
        target = rollback_target(incident, model, params.to_version)
        command: dict[str, Any] = {
            "command": "rollback",
            "model": model,
            "current_version": incident.model_version,
            "target_version": target,  # null: the deployer's own "previous"
            "incident_id": incident.id,
        }
        if params.provider == "kafka":
            assert params.topic is not None  # checked by the params model
            return await publish_event("rollback", context, params.topic, incident, command)
        return await _http(incident, params, context, command)

    @registry.reconciler("rollback")
    async def reconcile_rollback(
        incident: Incident, params: RollbackParams, context: ActionContext
    ) -> Reconciliation:
        params = params.resolved(incident, context)
        if params.provider == "mlflow":
            return await _mlflow_state(incident, params, context, _model(incident, params))
        if params.provider == "http":
            return Reconciliation(
                Verdict.REPEAT,
                f"requested again with the same Idempotency-Key {context.idempotency_key}",
            )
        return await cannot_tell(incident, params, context)


async def _http(
    incident: Incident, params: RollbackParams, context: ActionContext, command: dict[str, Any]
) -> ActionResult:
    url = str(params.url)
    token = read_secret(params.token_env, params.token_file, "token")
    headers = dict(params.headers) | idempotency_headers(context)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json_bytes({**command, "incident": incident_json(incident)})
    reply = await request(context, "POST", url, params.timeout_s, body=body, headers=headers)
    what = f"{command['model']} v{command['current_version']} → v{command['target_version']}"
    if not reply.ok:
        detail = f"rollback {what} via {url_target(url)} failed: {reply.describe([token or ''])}"
        return ActionResult("rollback", ok=False, detail=detail, target=command["model"])
    return ActionResult(
        "rollback",
        ok=True,
        detail=f"rollback {what} requested from {url_target(url)} (HTTP {reply.status})",
        target=command["model"],
    )


def _mlflow_registry(params: RollbackParams, context: ActionContext) -> MlflowRegistry:
    uri = str(params.tracking_uri) if params.tracking_uri else os.environ.get("MLFLOW_TRACKING_URI")
    if not uri or not uri.startswith(("http://", "https://")):
        raise ActionError(
            "rollback (mlflow): set tracking_uri or the MLFLOW_TRACKING_URI environment "
            f"variable to the tracking server's http(s) URL (got {uri!r})"
        )
    token = read_secret(params.token_env, params.token_file, "token")
    token = token or os.environ.get("MLFLOW_TRACKING_TOKEN") or None  # MLflow's own variable
    return MlflowRegistry(context, uri, token, params.timeout_s)


async def _mlflow_state(
    incident: Incident, params: RollbackParams, context: ActionContext, model: str
) -> Reconciliation:
    """Ask the registry whether the rollback happened: the alias tells."""
    alias = params.alias
    try:
        current = await _mlflow_registry(params, context).alias_version(model, alias)
    except MlflowFailure as exc:
        return Reconciliation(Verdict.UNKNOWN, f"cannot ask MLflow: {exc}")
    if params.to_version is not None and str(current) == params.to_version:
        return Reconciliation(Verdict.DONE, f"{model}@{alias} is at v{current} already")
    if incident.model_version is not None and str(current) != incident.model_version:
        return Reconciliation(
            Verdict.DONE,
            f"{model}@{alias} is v{current}, not v{incident.model_version} as in the incident: "
            "moved already",
        )
    if incident.model_version is None and params.to_version is None:
        return Reconciliation(
            Verdict.UNKNOWN,
            f"{model}@{alias} is v{current}, and the incident names no version to compare",
        )
    return Reconciliation(Verdict.REPEAT, f"{model}@{alias} is still v{current}: not moved")


async def _mlflow(
    incident: Incident, params: RollbackParams, context: ActionContext, model: str
) -> ActionResult:
    mlflow = _mlflow_registry(params, context)
    alias = params.alias
    try:
        current = await mlflow.alias_version(model, alias)
        if params.check_version and incident.model_version not in (None, str(current)):
            return ActionResult(
                "rollback",
                ok=True,
                detail=f"{model}@{alias} is v{current}, not v{incident.model_version} as in the "
                "incident: already rolled back or redeployed, left as is",
                target=model,
            )
        if params.to_version is not None:
            to: int | None = int(params.to_version)
        else:
            to = previous_version(await mlflow.ready_versions(model), current)
        if to is None:
            return ActionResult(
                "rollback",
                ok=False,
                detail=f"{model}@{alias} is v{current}: no earlier version to roll back to",
                target=model,
            )
        await mlflow.set_alias(model, alias, to)
    except MlflowFailure as exc:
        return ActionResult("rollback", ok=False, detail=str(exc), target=model)
    return ActionResult(
        "rollback", ok=True, detail=f"{model}@{alias}: v{current} → v{to}", target=model
    )

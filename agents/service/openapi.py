"""The OpenAPI 3.1 description of the worker's HTTP API, served at ``GET /openapi.json``.

Written by hand, next to the routes it describes; a unit test checks that every
route the worker registers is described here and nothing else is, and
tests/chaos/test_api_fuzz.py runs schemathesis against a real worker with it.
Request bodies that are pydantic models (a silence) take their schema from the
model itself.
"""

from __future__ import annotations

from typing import Any

from agents.incidents.silences import SilenceRequest

Schema = dict[str, Any]

_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
_OBJECT: Schema = {"type": "object"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form_body(field: str) -> Schema:
    """A required form-encoded body of one string field (what Slack posts)."""
    form = {"type": "object", "properties": {field: {"type": "string"}}}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    words = {
        400: "bad request",
        401: "no valid token",
        403: "the token's role does not allow it",
        404: "not found",
        409: "not in a state that allows it",
        413: "body too large",
        503: "not ready",
    }
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, words[s]) for s in statuses}


def _path_id(what: str) -> Schema:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": f"the {what}'s id",
        "schema": {"type": "string"},
    }


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _op(
    summary: str,
    ok: dict[str, Schema],
    errors: tuple[int, ...],
    *,
    role: str | None = None,
    params: list[Schema] | None = None,
    body: Schema | None = None,
) -> Schema:
    operation: Schema = {
        "summary": summary + (f" (role: {role})" if role else ""),
        "responses": {**ok, **_errors(*errors)},
    }
    if role:
        operation["security"] = [{"bearer": []}]
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = body
    return operation


_READ_ERRORS = (401, 403)
_CHANGE_ERRORS = (400, 401, 403, 404, 409)


def worker_openapi() -> Schema:
    """The description of every route of ``fireline run``'s HTTP server."""
    incident_id, approval_id = _path_id("incident"), _path_id("approval")
    optional_body = {
        "required": False,
        "content": {"application/json": {"schema": _OBJECT}},
    }
    switch_body = {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"playbook": {"type": "string"}, "reason": {"type": "string"}},
                }
            }
        },
    }
    silence_schema = SilenceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    paths: dict[str, Schema] = {
        "/healthz": {"get": _op("Liveness", {"200": _json(_OBJECT, "alive")}, ())},
        "/readyz": {
            "get": _op(
                "Readiness; its checks and problems only for a caller who may read",
                {"200": _json(_OBJECT, "ready")},
                (503,),
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {"200": {"description": "text format", "content": {"text/plain": {}}}},
                (),
            )
        },
        "/openapi.json": {"get": _op("This description", {"200": _json(_OBJECT, "OpenAPI")}, ())},
        "/incidents": {
            "get": _op(
                "Incidents, newest first",
                {"200": _json(_OBJECT, "{incidents: [...]}")},
                (400, *_READ_ERRORS),
                role="viewer",
                params=[
                    _query(
                        "status",
                        "open, acknowledged, resolved or active",
                        {"enum": ["open", "acknowledged", "resolved", "active"]},
                    ),
                    _query("model", "glob"),
                    _query("service", "glob"),
                    _query("since", "epoch seconds or a duration like 1h"),
                    _query("limit", "1 to 1000", {"type": "integer"}),
                ],
            )
        },
        "/incidents/{id}": {
            "get": _op(
                "One incident",
                {"200": _json(_OBJECT, "the incident")},
                (*_READ_ERRORS, 404),
                role="viewer",
                params=[incident_id],
            )
        },
        "/incidents/{id}/ack": {
            "post": _op(
                "Acknowledge, as the token's name",
                {"200": _json(_OBJECT, "applied"), "202": _json(_OBJECT, "accepted")},
                _CHANGE_ERRORS,
                role="responder",
                params=[incident_id],
                body=optional_body,
            )
        },
        "/incidents/{id}/resolve": {
            "post": _op(
                "Resolve by hand, as the token's name",
                {"200": _json(_OBJECT, "applied"), "202": _json(_OBJECT, "accepted")},
                _CHANGE_ERRORS,
                role="responder",
                params=[incident_id],
                body=optional_body,
            )
        },
        "/silences": {
            "get": _op(
                "Silences",
                {"200": _json(_OBJECT, "{silences: [...]}")},
                _READ_ERRORS,
                role="viewer",
                params=[_query("active", "true: only those in force now")],
            ),
            "post": _op(
                "Add a silence, created by the token's name",
                {"201": _json(_OBJECT, "the silence")},
                (400, 401, 403),
                role="responder",
                body={
                    "required": True,
                    "content": {"application/json": {"schema": silence_schema}},
                },
            ),
        },
        "/silences/{id}": {
            "delete": _op(
                "Remove a silence",
                {"200": _json(_OBJECT, "{removed: id}")},
                (401, 403, 404),
                role="responder",
                params=[_path_id("silence")],
            )
        },
        "/approvals": {
            "get": _op(
                "Approval requests, newest first",
                {"200": _json(_OBJECT, "{approvals: [...]}")},
                (400, *_READ_ERRORS),
                role="viewer",
                params=[
                    _query(
                        "status",
                        "pending, approved or rejected",
                        {"enum": ["pending", "approved", "rejected"]},
                    )
                ],
            )
        },
        "/approvals/{id}/approve": {
            "post": _op(
                "Approve a waiting step, as the token's name; 409 once expired",
                {"200": _json(_OBJECT, "the approval")},
                _CHANGE_ERRORS,
                role="approver",
                params=[approval_id],
                body=optional_body,
            )
        },
        "/approvals/{id}/reject": {
            "post": _op(
                "Reject a waiting step, as the token's name",
                {"200": _json(_OBJECT, "the approval")},
                _CHANGE_ERRORS,
                role="approver",
                params=[approval_id],
                body=optional_body,
            )
        },
        "/models/{model}/versions/{version}/accept": {
            "post": _op(
                "Accept a model version as its model's baseline now, as the token's name",
                {"202": _json(_OBJECT, "{accepted: command}")},
                (400, 401, 403),
                role="approver",
                params=[
                    {**_path_id("model"), "name": "model", "description": "the model"},
                    {**_path_id("version"), "name": "version", "description": "its version"},
                ],
                body=optional_body,
            )
        },
        "/actions/pause": {
            "post": _op(
                "Pause all actions, or one playbook's, fleet-wide, as the token's name",
                {"200": _json(_OBJECT, "{switch, paused, all_paused}")},
                (400, 401, 403, 404),
                role="responder",
                body=switch_body,
            )
        },
        "/actions/resume": {
            "post": _op(
                "Resume all actions, or one playbook's, as the token's name",
                {"200": _json(_OBJECT, "{switch, paused, all_paused}")},
                (400, 401, 403, 404),
                role="approver",
                body=switch_body,
            )
        },
        "/actions/status": {
            "get": _op(
                "What is paused, and the last switch of every scope",
                {"200": _json(_OBJECT, "{paused, all_paused, switches}")},
                _READ_ERRORS,
                role="viewer",
            )
        },
        "/slack/commands": {
            "post": _op(
                "The /fireline slash command (signed with the app's signing secret)",
                {"200": _json(_OBJECT, "{response_type, text}")},
                (401,),
                body=_form_body("text"),
            )
        },
        "/slack/interactions": {
            "post": _op(
                "Slack buttons (signed with the app's signing secret)",
                {"200": _json(_OBJECT, "{text: notes}")},
                (400, 401),
                body=_form_body("payload"),
            )
        },
        "/webhooks/alertmanager": {
            "post": _op(
                "Alertmanager webhook (bearer: the Alertmanager token)",
                {"200": _json(_OBJECT, "published")},
                (400, 401, 413),
                body={"required": True, "content": {"application/json": {"schema": _OBJECT}}},
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fireline worker",
            "version": "1",
            "description": "Incidents, silences, approvals, model versions and the actions' kill "
            "switch; health and metrics.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, **silence_schema.pop("$defs", {})},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

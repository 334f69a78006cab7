"""The ``webhook`` action: POST the incident (or a given body) as JSON, optionally signed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field, HttpUrl

from fireline.incident import Incident
from playbooks.actions.events import incident_json
from playbooks.actions.http import idempotency_headers, json_bytes, request, url_target
from playbooks.actions.secrets import read_secret
from playbooks.actions.signing import signature_headers
from playbooks.context import ActionContext
from playbooks.registry import (
    ActionParams,
    ActionRegistry,
    ActionResult,
    Reconciliation,
    Verdict,
)


class WebhookParams(ActionParams):
    """Params of the ``webhook`` action."""

    url: HttpUrl = Field(description="Where to POST.")
    body: dict[str, Any] | None = Field(
        default=None, description="JSON object to send instead of the incident."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra headers (no secrets: they are in the YAML)."
    )
    secret_env: str | None = Field(
        default=None, description="Env var holding the HMAC secret; enables signing."
    )
    secret_file: Path | None = Field(
        default=None, description="File holding the HMAC secret; enables signing."
    )
    signature_header: str = Field(
        default="X-Fireline-Signature", description="Header carrying sha256=<hex>."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Whole-request timeout.")


def register(registry: ActionRegistry) -> None:
    """Add the webhook action to ``registry``."""

    @registry.action("webhook")
    async def webhook(
        incident: Incident, params: WebhookParams, context: ActionContext
    ) -> ActionResult:
        url = str(params.url)
        target = url_target(url)
        secret = read_secret(params.secret_env, params.secret_file, "secret")
        body = json_bytes(params.body if params.body is not None else incident_json(incident))
        headers = dict(params.headers) | idempotency_headers(context)
        if secret is not None:
            headers |= signature_headers(secret, int(time.time()), body, params.signature_header)
        reply = await request(context, "POST", url, params.timeout_s, body=body, headers=headers)
        if not reply.ok:
            detail = f"POST {target} failed: {reply.describe(redact=[secret or ''])}"
            return ActionResult("webhook", ok=False, detail=detail, target=target)
        signed = ", signed" if secret else ""
        return ActionResult(
            "webhook", ok=True, detail=f"POST {target}: HTTP {reply.status}{signed}", target=target
        )

    @registry.reconciler("webhook")
    async def reconcile_webhook(
        incident: Incident, params: WebhookParams, context: ActionContext
    ) -> Reconciliation:
        return Reconciliation(
            Verdict.REPEAT,
            f"sent again with the same Idempotency-Key {context.idempotency_key}: "
            "a receiver that honours it acts once",
        )

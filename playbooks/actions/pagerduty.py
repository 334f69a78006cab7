"""The ``pagerduty`` action: an Events API v2 event, deduplicated by incident id."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, HttpUrl

from fireline.incident import Incident, Severity, Transition
from playbooks.actions.http import json_bytes, request, url_target
from playbooks.actions.secrets import require_secret
from playbooks.context import ActionContext
from playbooks.registry import (
    ActionParams,
    ActionRegistry,
    ActionResult,
    Reconciliation,
    Verdict,
)

EventAction = Literal["trigger", "acknowledge", "resolve"]
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX = 1024  # the Events API rejects longer summaries

# PagerDuty's severities are critical, error, warning, info; fireline's map 1:1 where named.
_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}
# An update or escalation re-triggers with the same dedup_key: PagerDuty folds it into the alert.
_ACTION: dict[Transition, EventAction] = {
    Transition.OPENED: "trigger",
    Transition.UPDATED: "trigger",
    Transition.ESCALATED: "trigger",
    Transition.REOPENED: "trigger",
    Transition.ACKNOWLEDGED: "acknowledge",
    Transition.RESOLVED: "resolve",
}


class PagerDutyParams(ActionParams):
    """Params of the ``pagerduty`` action."""

    routing_key_env: str | None = Field(
        default=None, description="Env var holding the integration's routing key."
    )
    routing_key_file: Path | None = Field(
        default=None, description="File holding the integration's routing key."
    )
    event_action: EventAction | None = Field(
        default=None, description="Force trigger/acknowledge/resolve; default: by transition."
    )
    url: HttpUrl = Field(default=HttpUrl(DEFAULT_URL), description="Events API v2 endpoint.")
    source: str | None = Field(
        default=None, description="payload.source; default: the incident's service or model."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Whole-request timeout.")


def pagerduty_event(
    incident: Incident, routing_key: str, event_action: EventAction | None, source: str | None
) -> dict[str, Any]:
    """The Events API v2 body for this incident event."""
    action = event_action or _ACTION[incident.transition]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": incident.id,
    }
    if action != "trigger":  # acknowledge and resolve take no payload
        return event
    event["payload"] = {
        "summary": incident.title[:SUMMARY_MAX],
        "source": source or incident.service or incident.model or "fireline",
        "severity": _SEVERITY[incident.severity],
        "component": incident.model,
        "group": incident.service,
        "class": incident.kind,
        "custom_details": {
            "incident_id": incident.id,
            "subject": incident.subject,
            "transition": incident.transition.value,
            "status": incident.status.value,
            "detections": incident.count,
            "likely_cause": incident.likely_cause,
        },
    }
    event["client"] = "fireline"
    return event


def register(registry: ActionRegistry) -> None:
    """Add the pagerduty action to ``registry``."""

    @registry.action("pagerduty")
    async def pagerduty(
        incident: Incident, params: PagerDutyParams, context: ActionContext
    ) -> ActionResult:
        url = str(params.url)
        target = url_target(url)
        key = require_secret(params.routing_key_env, params.routing_key_file, "routing_key")
        event = pagerduty_event(incident, key, params.event_action, params.source)
        reply = await request(context, "POST", url, params.timeout_s, body=json_bytes(event))
        action = event["event_action"]
        if not reply.ok:
            detail = f"{action} for {incident.id} failed: {reply.describe(redact=[key])}"
            return ActionResult("pagerduty", ok=False, detail=detail, target=target)
        return ActionResult(
            "pagerduty",
            ok=True,
            detail=f"{action} sent, dedup_key {incident.id} (HTTP {reply.status})",
            target=target,
        )

    @registry.reconciler("pagerduty")
    async def reconcile_pagerduty(
        incident: Incident, params: PagerDutyParams, context: ActionContext
    ) -> Reconciliation:
        return Reconciliation(
            Verdict.REPEAT, f"sent again with dedup_key {incident.id}: PagerDuty folds it"
        )

"""Slack Block Kit for incidents: the root message of an incident's thread, and approvals.

Pure functions from an incident to the ``text`` (the plain-text fallback Slack
shows in notifications) and ``blocks`` of a message. Button action ids carry what
they act on (``ack:<incident id>``), so the interactivity endpoint needs no state.
Every value that came with the events is escaped for Slack (playbooks.chat.escape);
dashboard links get their values URL-quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from string import Formatter
from typing import Any
from urllib.parse import quote

from fireline.durations import human_duration
from fireline.incident import Incident, Status
from playbooks.approvals import ApprovalRequest, Decision
from playbooks.chat.escape import mrkdwn
from playbooks.chat.messages import comparison_table, detections, incident_text, series_name

Block = dict[str, Any]

# Button action ids are "<verb>:<id>"; agents.slack.interactions maps each verb to an operation.
ACKNOWLEDGE = "ack"
RESOLVE = "resolve"
SILENCE = "silence1h"
APPROVE = "approve"
REJECT = "reject"
ACCEPT = "accept"  # accept the incident's worse-looking model version as the new baseline

_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


@dataclass(frozen=True)
class SlackMessage:
    """What a chat.postMessage or chat.update carries."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # Slack message metadata (event_type, event_payload)


# A root carries its incident id as message metadata, so Slack itself can say
# whether an incident already has a root in a channel (see ChatSink.find_root).
ROOT_EVENT = "fireline_incident_root"


def root_metadata(incident_id: str) -> dict[str, Any]:
    """The metadata of ``incident_id``'s root message."""
    return {"event_type": ROOT_EVENT, "event_payload": {"incident_id": incident_id}}


def is_root_of(metadata: Any, incident_id: str) -> bool:
    """Whether a message's ``metadata`` (as Slack returns it) marks ``incident_id``'s root."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != ROOT_EVENT:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("incident_id") == incident_id


@dataclass(frozen=True)
class Links:
    """Where to look further: the playbook's runbook and a dashboard."""

    runbook: str | None = None
    dashboard: str | None = None


def action_id(verb: str, target: str) -> str:
    """A button's action id: ``ack:inc-0ec8b552129daee9``."""
    return f"{verb}:{target}"


def parse_action_id(value: str) -> tuple[str, str]:
    """``(verb, target)`` from an action id; ValueError when it has no verb.

    >>> parse_action_id("ack:inc-1")
    ('ack', 'inc-1')
    """
    verb, sep, target = value.partition(":")
    if not sep or not verb or not target:
        raise ValueError(f"not a fireline action id: {value!r}")
    return verb, target


def dashboard_url(template: str | None, incident: Incident) -> str | None:
    """Fill ``{model}``, ``{service}``, ``{version}``, ``{id}``, ``{kind}``, ``{from_ms}``.

    None without a template, or when the template names a field the incident lacks
    (e.g. ``{model}`` for an incident about a service only), or names an unknown one.
    """
    if not template:
        return None
    values = {
        "model": incident.model,
        "service": incident.service,
        "version": incident.model_version,
        "id": incident.id,
        "kind": incident.kind,
        "from_ms": str(int(incident.first_seen * 1000) - 15 * 60 * 1000),
    }
    try:
        names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError:
        return None
    if any(values.get(name) is None for name in names):
        return None
    # A label value is data: quoted, it cannot end the link or add a query of its own.
    return template.format_map({k: quote(v, safe="") for k, v in values.items() if v is not None})


def status_text(incident: Incident) -> str:
    """The current status for the root message: open, acknowledged by, resolved after."""
    if incident.status is Status.RESOLVED:
        end = incident.resolved_at or incident.last_seen
        took = human_duration(max(0.0, end - incident.first_seen))
        who = f" by {mrkdwn(incident.resolved_by)}" if incident.resolved_by else ""
        how = f" ({incident.resolution.value})" if incident.resolution else ""
        return f":white_check_mark: Resolved{who} after {took}{how}"
    if incident.status is Status.ACKNOWLEDGED:
        who = mrkdwn(incident.acknowledged_by) or "someone"
        return f":eyes: Acknowledged by {who}"
    return ":red_circle: Open"


def detected_text(incident: Incident) -> str | None:
    """What was detected: detector, series, observed vs. baseline (the first signal)."""
    if not incident.signals:
        return None
    signal = incident.signals[0]
    if incident.comparison is not None and signal.message:  # the figures follow in a table
        return f"{signal.message}, detector `{signal.detector}`"
    ratio = f" ({signal.observed / signal.baseline:.1f}x)" if signal.baseline else ""
    words = f" ({mrkdwn(signal.message)})" if signal.message else ""
    return (
        f"`{mrkdwn(series_name(signal))}` observed *{_num(signal.observed)}* vs baseline "
        f"{_num(signal.baseline)}{ratio}, detector `{mrkdwn(signal.detector)}`{words}"
    )


def root_message(
    incident: Incident, links: Links | None = None, mention: str | None = None
) -> SlackMessage:
    """The incident's root message: what, how bad, since when, why, links, status, buttons."""
    links = links or Links()
    icon = _ICONS.get(incident.severity.value, ":warning:")
    head = f"{icon} [{incident.severity.value.upper()}] {mrkdwn(incident.title)}"
    since = _when(incident.first_seen)
    fields = [
        _field("Severity", incident.severity.value),
        _field("Subject", mrkdwn(incident.subject)),
        _field("Started", since),
        _field("Status", status_text(incident)),
    ]
    if incident.likely_cause:
        fields.append(_field("Followed", mrkdwn(incident.likely_cause)))
    blocks: list[Block] = [_section(mention)] if mention else []
    blocks += [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}},
        {"type": "section", "fields": fields},
    ]
    detected = detected_text(incident)
    if detected:
        blocks.append(_section(f"*Detected:* {detected}"))
    if incident.comparison is not None:
        blocks.append(_preformatted(comparison_table(incident.comparison)))
    link_line = _links(links)
    if link_line:
        blocks.append(_section(link_line))
    buttons = _incident_buttons(incident)
    if buttons:
        blocks.append(
            {"type": "actions", "block_id": f"incident:{incident.id}", "elements": buttons}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Incident `{incident.id}` · {detections(incident.count)}",
                }
            ],
        }
    )
    return SlackMessage(root_text(incident, links, mention), blocks)


def root_text(incident: Incident, links: Links | None = None, mention: str | None = None) -> str:
    """The plain-text fallback (notifications, the console): the incident text plus links."""
    links = links or Links()
    lines = [incident_text(incident)]
    if links.runbook:
        lines.append(f"Runbook: {links.runbook}")
    if links.dashboard:
        lines.append(f"Dashboard: {links.dashboard}")
    text = "\n".join(lines)
    return f"{mention} {text}" if mention else text


def approval_message(request: ApprovalRequest, params_json: str) -> SlackMessage:
    """A request for a human decision, with Approve and Reject buttons."""
    text = (
        f":raised_hand: [APPROVAL NEEDED] playbook {request.playbook} wants to run "
        f"{request.step} ({request.action} {mrkdwn(params_json)}) for "
        f"{mrkdwn(request.incident.title)} ({request.incident.id}).\n"
        f"Approve: fireline approvals approve {request.id}  |  "
        f"reject: fireline approvals reject {request.id}"
    )
    buttons = [
        _button("Approve", action_id(APPROVE, request.id), request.id, "primary"),
        _button("Reject", action_id(REJECT, request.id), request.id, "danger"),
    ]
    blocks: list[Block] = [
        _section(text.split("\n", 1)[0]),
        {"type": "actions", "block_id": f"approval:{request.id}", "elements": buttons},
    ]
    return SlackMessage(text, blocks)


def approval_decided_message(request: ApprovalRequest, params_json: str) -> SlackMessage:
    """The approval request once decided: who said what, and no buttons left to press."""
    icon = ":white_check_mark:" if request.status is Decision.APPROVED else ":no_entry:"
    text = (
        f"{icon} [{request.status.value.upper()} by {mrkdwn(request.decided_by)}] playbook "
        f"{request.playbook}: {request.step} ({request.action} {mrkdwn(params_json)}) for "
        f"{mrkdwn(request.incident.title)} ({request.incident.id}); approval {request.id}."
    )
    return SlackMessage(text, [_section(text)])


def _incident_buttons(incident: Incident) -> list[Block]:
    if incident.status is Status.RESOLVED:
        return []
    buttons = []
    if incident.status is Status.OPEN:
        buttons.append(
            _button("Acknowledge", action_id(ACKNOWLEDGE, incident.id), incident.id, "primary")
        )
    buttons.append(_button("Resolve", action_id(RESOLVE, incident.id), incident.id))
    buttons.append(_button("Silence 1h", action_id(SILENCE, incident.id), incident.id))
    if incident.comparison is not None and incident.model_version:
        # The engineer judges the figures fine after all: the version becomes the baseline.
        label = f"Accept v{incident.model_version}"
        buttons.append(_button(label[:75], action_id(ACCEPT, incident.id), incident.id))
    return buttons


def _button(label: str, action: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _links(links: Links) -> str:
    parts = []
    if links.runbook:
        parts.append(f"<{links.runbook}|Runbook>")
    if links.dashboard:
        parts.append(f"<{links.dashboard}|Dashboard>")
    return " · ".join(parts)


def _field(name: str, value: str) -> Block:
    return {"type": "mrkdwn", "text": f"*{name}*\n{value}"}


def _preformatted(text: str) -> Block:
    """Monospace text, literal: rich text's text elements are never read as markup."""
    return {
        "type": "rich_text",
        "elements": [
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": text[:3000]}]}
        ],
    }


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 1e6 else f"{value:.3g}"

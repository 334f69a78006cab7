"""What fireline says in an incident's thread besides the incident's own events.

Pure functions: a summary of what the playbook steps did, what a dry-run
playbook would have done, and a reminder that a critical incident is still
waiting for someone to acknowledge it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fireline.durations import human_duration
from fireline.incident import Incident
from playbooks.chat.blocks import SlackMessage
from playbooks.steps import Outcome, StepRecord

# The chat action's own messages are the thread; skipped steps and pending
# approvals (announced with their buttons) would only repeat what is there.
_UNREPORTED_ACTIONS = {"slack", "-"}
_REPORTED = {
    Outcome.OK: ":white_check_mark:",
    Outcome.FAILED: ":x:",
    Outcome.REJECTED: ":no_entry:",
    Outcome.UNKNOWN: ":grey_question:",  # a human must check the target: always said
}


def step_results_message(records: Sequence[StepRecord]) -> SlackMessage | None:
    """One reply listing each step that ran, failed or was refused; None when none did."""
    lines = []
    for record in records:
        icon = _REPORTED.get(record.outcome)
        unreported = record.action in _UNREPORTED_ACTIONS and record.outcome is not Outcome.UNKNOWN
        if icon is None or unreported:
            continue
        line = f"{icon} {record.playbook}/{record.step} ({_what(record)})"
        line += f": {record.detail}" if record.detail else ""
        if record.attempts > 1:
            line += f" ({record.attempts} attempts)"
        if record.approved_by:
            line += f", approved by {record.approved_by}"
        lines.append(line)
    if not lines:
        return None
    return SlackMessage("\n".join(["Playbook steps:", *lines]))


def dry_run_message(playbook: str, incident: Incident, records: Sequence[StepRecord]) -> str:
    """What a dry-run playbook would have run, step by step, with the rendered params."""
    lines = [f"[DRY-RUN] playbook {playbook} for {incident.id} ({incident.title}):"]
    for record in records:
        verdict = "would run" if record.outcome is Outcome.DRY_RUN else record.outcome.value
        lines.append(f"- {record.step}: {verdict} {json.dumps(record.params, default=str)}")
    return "\n".join(lines)


def reminder_message(incident: Incident, mention: str, now: float, reminder: int) -> SlackMessage:
    """Nobody acknowledged a critical incident: say so, with how to take it."""
    waited = human_duration(now - incident.first_seen)
    head = f"{mention} " if mention else ""
    text = (
        f":alarm_clock: {head}Reminder {reminder}: [{incident.severity.value.upper()}] "
        f"{incident.title} unacknowledged for {waited}\n"
        f"Acknowledge it with the button on the incident's message, or "
        f"`fireline incidents ack {incident.id}`."
    )
    return SlackMessage(text)


def _what(record: StepRecord) -> str:
    """The step's target (``webhook:https://...``), or its action when it has no main param."""
    target = record.target or ""
    return target if target and not target.endswith(":default") else record.action

"""``fireline playbooks test``: which playbooks an incident event triggers, and what would run.

Offline and side-effect free: conditions are evaluated and params rendered
exactly as the engine would, and no action is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fireline.incident import Incident
from playbooks.engine import redact
from playbooks.expressions import incident_variables
from playbooks.schema import Mode, Playbook
from playbooks.templating import RenderError, render_params


@dataclass(frozen=True)
class StepPlan:
    """One step as the engine would take it."""

    step: str
    action: str
    runs: bool
    why: str  # "", the false `when`, or the render error
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaybookPlan:
    """One playbook's verdict for the event."""

    playbook: str
    matches: bool
    reasons: list[str]  # why it does not match
    mode: str
    steps: list[StepPlan] = field(default_factory=list)


def explain(playbooks: list[Playbook], incident: Incident) -> list[PlaybookPlan]:
    """The plan of every playbook (disabled ones say so) for one incident event."""
    variables = incident_variables(incident)
    plans = []
    for playbook in playbooks:
        reasons = [] if playbook.enabled else ["disabled (enabled: false)"]
        reasons += playbook.match.mismatches(incident)
        steps = [] if reasons else [_plan(step, incident, variables) for step in playbook.steps]
        plans.append(PlaybookPlan(playbook.name, not reasons, reasons, playbook.mode, steps))
    return plans


def _plan(step: Any, incident: Incident, variables: dict[str, Any]) -> StepPlan:
    if not step.applies(incident):
        return StepPlan(step.label, step.action, False, f"when is false: {step.when}")
    try:
        params = render_params(step.params, variables)
    except (RenderError, ValueError) as exc:
        return StepPlan(step.label, step.action, False, f"params would fail: {exc}")
    return StepPlan(step.label, step.action, True, "", redact(params))


def render_report(plans: list[PlaybookPlan]) -> str:
    """The plans as text for humans."""
    lines = []
    for plan in plans:
        if not plan.matches:
            lines.append(f"✗ {plan.playbook}: no match — " + "; ".join(plan.reasons))
            continue
        dry = " (dry-run: would only be recorded)" if plan.mode == Mode.DRY_RUN else ""
        lines.append(f"✓ {plan.playbook}: matches{dry}")
        for number, step in enumerate(plan.steps, start=1):
            if step.runs:
                lines.append(f"    {number}. {step.step} → {step.action} {step.params}")
            else:
                lines.append(f"    {number}. {step.step} → skipped: {step.why}")
    matched = sum(p.matches for p in plans)
    lines.append(f"{matched} of {len(plans)} playbook(s) match; nothing was executed.")
    return "\n".join(lines)

"""``fireline playbooks test``: which playbooks an incident event triggers, and what would run.

Offline and side-effect free: conditions are evaluated and params rendered
exactly as the engine would, and no action is called. Params are shown as the
action would act with them, the defaults it takes from the incident or the
worker filled in (the worker's channel, the incident's model). Each step says
whether it waits for a human's approval, and a playbook with ``verify`` says
how long the incident has to resolve and what runs if it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fireline.durations import human_duration
from fireline.incident import Incident
from playbooks.context import ActionContext
from playbooks.engine import redact
from playbooks.expressions import incident_variables
from playbooks.schema import Mode, OnFailure, Playbook, Step, StepOptions
from playbooks.templating import RenderError, render_params

_DEFAULT_TIMEOUT_S = StepOptions.model_fields["timeout"].default


@dataclass(frozen=True)
class StepPlan:
    """One step as the engine would take it."""

    step: str
    action: str
    runs: bool
    why: str  # "", the false `when`, or the render error
    params: dict[str, Any] = field(default_factory=dict)
    require_approval: bool = False  # a human approves before it runs (not in dry-run)
    on_failure: str = OnFailure.STOP.value
    retries: int = 0
    timeout_s: float = _DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class VerifyPlan:
    """The check after the steps ran: resolved in time, else ``on_unverified`` runs."""

    resolved_within_s: float
    on_unverified: list[StepPlan]


@dataclass(frozen=True)
class PlaybookPlan:
    """One playbook's verdict for the event."""

    playbook: str
    matches: bool
    reasons: list[str]  # why it does not match
    mode: str
    steps: list[StepPlan] = field(default_factory=list)
    verify: VerifyPlan | None = None


def explain(
    playbooks: list[Playbook], incident: Incident, context: ActionContext | None = None
) -> list[PlaybookPlan]:
    """The plan of every playbook (disabled ones say so) for one incident event.

    ``context``: the worker's defaults (its chat channel) as the actions would see
    them; none without one.
    """
    variables = incident_variables(incident)
    worker = context or ActionContext()
    plans = []
    for playbook in playbooks:
        reasons = [] if playbook.enabled else ["disabled (enabled: false)"]
        reasons += playbook.match.mismatches(incident)
        if reasons:
            plans.append(PlaybookPlan(playbook.name, False, reasons, playbook.mode))
        else:
            plans.append(_playbook_plan(playbook, incident, variables, worker))
    return plans


def _playbook_plan(
    playbook: Playbook, incident: Incident, variables: dict[str, Any], worker: ActionContext
) -> PlaybookPlan:
    context = worker.for_playbook(playbook.runbook_url)
    steps = [_plan(step, incident, variables, context) for step in playbook.steps]
    verify = None
    if playbook.verify is not None:
        verify = VerifyPlan(
            playbook.verify.resolved_within,
            [_plan(step, incident, variables, context) for step in playbook.verify.on_unverified],
        )
    return PlaybookPlan(playbook.name, True, [], playbook.mode, steps, verify)


def _plan(
    step: Step, incident: Incident, variables: dict[str, Any], context: ActionContext
) -> StepPlan:
    skipped = StepPlan(
        step.label,
        step.action,
        runs=False,
        why="",
        require_approval=step.require_approval,
        on_failure=step.on_failure.value,
        retries=step.retries,
        timeout_s=step.timeout,
    )
    if not step.applies(incident):
        return replace(skipped, why=f"when is false: {step.when}")
    try:
        params = render_params(step.params, variables)
    except (RenderError, ValueError) as exc:
        return replace(skipped, why=f"params would fail: {exc}")
    return replace(skipped, runs=True, params=redact(params.resolved(incident, context)))


def render_report(plans: list[PlaybookPlan]) -> str:
    """The plans as text for humans; params left unset (None) are not shown."""
    lines = []
    for plan in plans:
        if not plan.matches:
            lines.append(f"✗ {plan.playbook}: no match — " + "; ".join(plan.reasons))
            continue
        dry = plan.mode == Mode.DRY_RUN
        lines.append(f"✓ {plan.playbook}: matches" + (" (dry-run: would only be recorded)" * dry))
        for number, step in enumerate(plan.steps, start=1):
            lines.append(f"    {number}. {_step_line(step, dry)}")
        if plan.verify is not None:
            within = human_duration(plan.verify.resolved_within_s)
            lines.append(f"    then verify: resolved within {within}, or else:")
            for number, step in enumerate(plan.verify.on_unverified, start=1):
                lines.append(f"       {number}. {_step_line(step, dry)}")
    matched = sum(p.matches for p in plans)
    lines.append(f"{matched} of {len(plans)} playbook(s) match; nothing was executed.")
    return "\n".join(lines)


def _step_line(step: StepPlan, dry: bool) -> str:
    if not step.runs:
        return f"{step.step} → skipped: {step.why}"
    shown = {name: value for name, value in step.params.items() if value is not None}
    gate = ""
    if step.require_approval:
        gate = "(no approval asked in dry-run) " if dry else "waits for a human's approval, then "
    notes = _notes(step)
    return f"{step.step} → {gate}{step.action} {shown}" + (f" [{notes}]" if notes else "")


def _notes(step: StepPlan) -> str:
    notes = []
    if step.timeout_s != _DEFAULT_TIMEOUT_S:
        notes.append(f"timeout {human_duration(step.timeout_s)}")
    if step.retries:
        notes.append(f"{step.retries} {'retry' if step.retries == 1 else 'retries'}")
    if step.on_failure != OnFailure.STOP.value:
        notes.append(f"on failure: {step.on_failure}")
    return ", ".join(notes)

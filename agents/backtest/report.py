"""What a backtest found, as text for people and JSON for machines, and two playbook sets compared."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from agents.backtest.simulation import BacktestResult, IncidentSeen, PlannedStep, PlaybookSetRun
from fireline.durations import human_duration

PAGING_ACTIONS = frozenset({"pagerduty"})
NOISIEST = 5


@dataclass(frozen=True)
class Summary:
    """The figures an on-call lead asks for first."""

    days: float
    incidents: int
    pages: int
    pages_per_day: float
    rollbacks: int
    approvals: int
    slack_messages: dict[str, int]  # channel → messages
    noisiest_subjects: list[tuple[str, int]]


@dataclass(frozen=True)
class Comparison:
    """Steps that would run with the second set and not the first (added), and the reverse."""

    baseline: str
    candidate: str
    added: list[PlannedStep]
    removed: list[PlannedStep]


def summarize(result: BacktestResult, run: PlaybookSetRun) -> Summary:
    """Pages, rollbacks, Slack messages per channel and the noisiest subjects of one set."""
    span = (result.last_event or 0.0) - (result.first_event or 0.0)
    days = max(span / 86_400.0, 1 / 24)  # under an hour counts as an hour: no 1e6 pages/day
    ran = [s for s in run.steps if s.would_run]
    pages = sum(s.action in PAGING_ACTIONS for s in ran)
    slack = Counter(str(s.params.get("channel") or "(default)") for s in ran if s.action == "slack")
    subjects = Counter(i.subject for i in result.incidents.values())
    return Summary(
        days=round(days, 3),
        incidents=len(result.incidents),
        pages=pages,
        pages_per_day=round(pages / days, 2),
        rollbacks=sum(s.action == "rollback" for s in ran),
        approvals=sum(s.requires_approval for s in ran),
        slack_messages=dict(sorted(slack.items())),
        noisiest_subjects=subjects.most_common(NOISIEST),
    )


def compare(baseline: PlaybookSetRun, candidate: PlaybookSetRun) -> Comparison:
    """The steps that would run under one set only, matched by incident event and step."""
    before = {s.identity(): s for s in baseline.steps if s.would_run}
    after = {s.identity(): s for s in candidate.steps if s.would_run}
    return Comparison(
        baseline.label,
        candidate.label,
        added=[s for key, s in after.items() if key not in before],
        removed=[s for key, s in before.items() if key not in after],
    )


def to_json(result: BacktestResult, rejected: int, reject_examples: list[str]) -> str:
    """One JSON document: incidents, each set's steps and summary, and a comparison if two."""
    sets = [
        {"playbooks": run.label, "summary": asdict(summarize(result, run)), "steps": _steps(run)}
        for run in result.runs
    ]
    document: dict[str, object] = {
        "from": result.first_event,
        "to": result.last_event,
        "events": result.events,
        "rejected": rejected,
        "rejected_examples": reject_examples,
        "detections": result.detections,
        "incidents": [{**asdict(i), "duration_s": i.duration_s} for i in result.incidents.values()],
        "playbook_sets": sets,
    }
    if len(result.runs) == 2:
        diff = compare(*result.runs)
        document["compare"] = {
            "baseline": diff.baseline,
            "candidate": diff.candidate,
            "added": [asdict(s) for s in diff.added],
            "removed": [asdict(s) for s in diff.removed],
        }
    return json.dumps(document, indent=2, default=str)


def _steps(run: PlaybookSetRun) -> list[dict[str, object]]:
    return [asdict(s) for s in run.steps]


def to_text(result: BacktestResult, rejected: int, reject_examples: list[str]) -> str:
    """The report a person reads: incidents, steps, approvals, summary (and the comparison)."""
    lines = [_header(result, rejected)]
    lines += [f"  rejected: {example}" for example in reject_examples]
    lines.append("")
    lines.append(f"Incidents ({len(result.incidents)} opened)")
    lines += [_incident_line(i) for i in result.incidents.values()] or ["  none"]
    for run in result.runs:
        lines += ["", *_set_lines(result, run)]
    if len(result.runs) == 2:
        lines += ["", *_comparison_lines(compare(*result.runs))]
    return "\n".join(lines) + "\n"


def _header(result: BacktestResult, rejected: int) -> str:
    if result.first_event is None or result.last_event is None:
        return f"Backtest: no events in range ({rejected:,} rejected)"
    return (
        f"Backtest: {_time(result.first_event)} .. {_time(result.last_event)}, "
        f"{result.events:,} events ({rejected:,} rejected), {result.detections:,} detections; "
        "every action dry-run, nothing sent"
    )


def _incident_line(incident: IncidentSeen) -> str:
    if incident.duration_s is not None:
        ended = f"resolved ({incident.resolution}) after {human_duration(incident.duration_s)}"
    else:
        ended = f"{incident.status} at the end"
    quiet = "" if incident.notified else "  [silenced or flapping: no playbooks]"
    cause = f"  cause: {incident.likely_cause}" if incident.likely_cause else ""
    return (
        f"  {_time(incident.opened_at)}  {incident.kind:<18} {incident.subject:<28} "
        f"{incident.severity:<8} {ended}  [{incident.id}]{cause}{quiet}"
    )


def _set_lines(result: BacktestResult, run: PlaybookSetRun) -> list[str]:
    ran = [s for s in run.steps if s.would_run]
    held = [s for s in run.steps if s.outcome == "skipped" and s.step == "-"]
    lines = [f"Playbooks {run.label}: {len(ran)} steps would have run"]
    lines += [_step_line(s) for s in ran] or ["  none"]
    if held:
        lines.append(f"  held by guardrails ({len(held)}):")
        lines += [f"    {_time(s.at)}  {s.playbook}: {s.detail}  [{s.incident_id}]" for s in held]
    approvals = [s for s in ran if s.requires_approval]
    lines.append(f"  approvals that would have been requested: {len(approvals)}")
    lines += [f"    {_time(s.at)}  {s.playbook}/{s.step}  [{s.incident_id}]" for s in approvals]
    summary = summarize(result, run)
    channels = ", ".join(f"{c} {n}" for c, n in summary.slack_messages.items()) or "none"
    noisy = ", ".join(f"{s} ({n})" for s, n in summary.noisiest_subjects) or "none"
    lines += [
        (
            f"  summary over {summary.days:g} days: {summary.incidents} incidents, "
            f"{summary.pages} pages ({summary.pages_per_day:g}/day), "
            f"{summary.rollbacks} rollbacks, {summary.approvals} approvals"
        ),
        f"  Slack messages: {channels}",
        f"  noisiest subjects: {noisy}",
    ]
    return lines


def _step_line(step: PlannedStep) -> str:
    params = json.dumps(step.params, sort_keys=True, default=str)
    approval = " (approval)" if step.requires_approval else ""
    return (
        f"  {_time(step.at)}  {step.playbook}/{step.step}{approval} on {step.transition}  "
        f"[{step.incident_id}]  {params}"
    )


def _comparison_lines(diff: Comparison) -> list[str]:
    lines = [f"Compared: {diff.candidate} against {diff.baseline}"]
    lines += [f"  + {_step_line(s).strip()}" for s in diff.added]
    lines += [f"  - {_step_line(s).strip()}" for s in diff.removed]
    if not diff.added and not diff.removed:
        lines.append("  the same steps would have run")
    return lines


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")

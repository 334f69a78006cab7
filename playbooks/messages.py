"""Human text for incidents: what broke, how badly, since when."""

from __future__ import annotations

from datetime import UTC, datetime

from playbooks.incident import Incident, Transition

_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def incident_text(incident: Incident) -> str:
    """One message for an incident: subject, observed vs. normal, since when, the id."""
    icon = (
        ":white_check_mark:"
        if incident.transition is Transition.RESOLVED
        else _ICONS.get(incident.severity.value, ":warning:")
    )
    since = datetime.fromtimestamp(incident.first_seen, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    head = f"{icon} [{incident.severity.value.upper()}] {incident.title}"
    if incident.transition is Transition.RESOLVED:
        head = f"{icon} [RESOLVED] {incident.title}"
    lines = [head, f"Subject: {incident.subject}", f"Since: {since}"]
    for signal in incident.signals[-3:]:
        ratio = signal.observed / signal.baseline if signal.baseline else float("inf")
        lines.append(
            f"{signal.series}: observed {_num(signal.observed)} vs normal "
            f"{_num(signal.baseline)} ({ratio:.1f}x), detector {signal.detector}"
        )
    lines.append(f"Incident {incident.id} ({incident.status.value}, {incident.count} detections)")
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 1e6 else f"{value:.3g}"

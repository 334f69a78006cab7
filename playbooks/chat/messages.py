"""Human text for incidents: what broke, how badly, since when, and how it ended.

The text is Slack mrkdwn: every value that came with the events (title, subject,
series, the detector's words, who acknowledged) is escaped (playbooks.chat.escape).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fireline.durations import human_duration
from fireline.incident import (
    ComparedFigureModel,
    Evidence,
    Incident,
    Resolution,
    Signal,
    Transition,
    VersionComparisonModel,
)
from playbooks.chat.escape import mrkdwn

_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def incident_text(incident: Incident) -> str:
    """One message for an incident event: subject, observed vs. normal, since when, the id."""
    since = datetime.fromtimestamp(incident.first_seen, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if incident.transition is Transition.RESOLVED:
        lines = _resolved_head(incident)
    else:
        icon = _ICONS.get(incident.severity.value, ":warning:")
        tag = incident.severity.value.upper()
        if incident.transition is not Transition.OPENED:
            tag += f": {incident.transition.value.upper()}"
        lines = [f"{icon} [{tag}] {mrkdwn(incident.title)}"]
        if incident.transition is Transition.ACKNOWLEDGED and incident.acknowledged_by:
            lines.append(f"Acknowledged by {mrkdwn(incident.acknowledged_by)}")
    lines += [f"Subject: {mrkdwn(incident.subject)}", f"Since: {since}"]
    if incident.likely_cause:
        lines.append(f"Likely cause: {mrkdwn(incident.likely_cause)}")
    if incident.signals:
        lines.append(_signal_line(incident))
    if incident.comparison is not None and incident.transition is not Transition.RESOLVED:
        lines.append(mrkdwn(comparison_table(incident.comparison)))  # versions are event data
    lines.append(f"Incident {incident.id} ({incident.status.value}, {detections(incident.count)})")
    return "\n".join(lines)


def _resolved_head(incident: Incident) -> list[str]:
    took = human_duration(incident.last_seen - incident.first_seen)
    last = incident.signals[-1] if incident.signals else None
    if incident.resolution is Resolution.NEW_NORMAL and last is not None:
        return [
            f":warning: [RESOLVED: NEW LEVEL] {mrkdwn(incident.title)} after {took}",
            (
                f"It did not come back: {mrkdwn(series_name(last))} settled at {_num(last.observed)} "
                f"(normal was {_num(last.baseline)}) and is now treated as normal. Is that acceptable?"
            ),
        ]
    if incident.resolution is Resolution.MANUAL:
        return [
            f":white_check_mark: [RESOLVED] {mrkdwn(incident.title)} by {mrkdwn(incident.resolved_by)}"
        ]
    if incident.resolution is Resolution.QUIET:
        return [
            f":white_check_mark: [RESOLVED: QUIET] {mrkdwn(incident.title)} after {took}",
            "Its detectors stopped reporting it (no clear recovery was seen).",
        ]
    return [f":white_check_mark: [RESOLVED] {mrkdwn(incident.title)} after {took}"]


def series_name(signal: Signal) -> str:
    """The signal's series as people look it up: its PromQL selector when it has one."""
    return signal.selector or signal.series


def shown_series(incident: Incident, evidence: Evidence) -> str:
    """An evidence series named as its signal names it (its PromQL selector, if any)."""
    signal = next((s for s in incident.signals if s.series == evidence.series), None)
    return evidence.series if signal is None else series_name(signal)


def _signal_line(incident: Incident) -> str:
    """What was detected; once resolved, what the series came back to."""
    signal = incident.signals[0]
    if incident.transition is Transition.RESOLVED:
        cleared = _cleared(incident, signal)
        if cleared is not None:
            return _recovery_line(signal, cleared)
    no_ratio = signal.baseline <= 0 or incident.comparison is not None  # figures: the table
    if signal.message and no_ratio:  # no meaningful ratio: the detector's words
        return (
            f"{mrkdwn(series_name(signal))}: {mrkdwn(signal.message)}, "
            f"detector {mrkdwn(signal.detector)}"
        )
    ratio = signal.observed / signal.baseline if signal.baseline else float("inf")
    return (
        f"{mrkdwn(series_name(signal))}: observed {_num(signal.observed)} vs normal "
        f"{_num(signal.baseline)} ({ratio:.1f}x), detector {mrkdwn(signal.detector)}"
    )


def _cleared(incident: Incident, raised: Signal) -> Signal | None:
    """The latest clearing of the problem ``raised`` opened, if the incident kept one."""
    return next(
        (
            s
            for s in reversed(incident.signals)
            if s.cleared and s.fingerprint == raised.fingerprint and s.series == raised.series
        ),
        None,
    )


def _recovery_line(raised: Signal, cleared: Signal) -> str:
    if raised.baseline <= 0 or cleared.baseline <= 0:  # no level to compare (an alert, a test)
        words = f" ({mrkdwn(cleared.message)})" if cleared.message else ""
        return f"{mrkdwn(series_name(raised))}: cleared{words}, detector {mrkdwn(raised.detector)}"
    return (
        f"{mrkdwn(series_name(raised))}: back to {_num(cleared.observed)} vs normal "
        f"{_num(cleared.baseline)}; {_num(raised.observed)} when detected, "
        f"detector {mrkdwn(raised.detector)}"
    )


# Figures that are fractions (detectors/monitor/comparison.py shows them the same way).
_FRACTIONS = frozenset(
    {
        "error_rate",
        "positive_rate",
        "class_mix",
        "class_error",
        "estimated_accuracy",
        "estimated_precision",
        "estimated_recall",
    }
)
_LABELLED = frozenset({"error_rate", "mae", "rmse", "class_error"})


def comparison_table(comparison: VersionComparisonModel) -> str:
    """Both versions' figures side by side, as aligned plain text (monospace).

    ::

        metric          v7      v8       events v7 / v8
        error rate      1.2%    3.6% ✗   9,000 / 1,800 labelled
        mean score      0.63    0.58     9,000 / 2,000

    ``✗`` marks a figure on which the candidate is worse by more than the margin.
    """
    baseline, candidate = comparison.baseline_version, comparison.candidate_version
    rows = [["metric", f"v{baseline}", f"v{candidate}", f"events v{baseline} / v{candidate}"]]
    for figure in comparison.figures:
        rows.append(
            [
                _figure_name(figure),
                _figure_value(figure.metric, figure.baseline),
                _figure_value(figure.metric, figure.candidate) + (" ✗" if figure.worse else ""),
                f"{figure.baseline_events:,} / {figure.candidate_events:,}"
                + (" labelled" if figure.metric in _LABELLED else ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[3]])
        for row in rows
    )


def _figure_name(figure: ComparedFigureModel) -> str:
    name = figure.metric.replace("_", " ")
    if figure.detail:
        name = f"{name} {figure.detail}"
    return f"{name} (est.)" if figure.estimated and "estimated" not in name else name


def _figure_value(metric: str, value: float) -> str:
    if metric in _FRACTIONS:
        return f"{value:.1%}"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value:.3g}" if abs(value) >= 1 else f"{value:.2f}"


def detections(count: int) -> str:
    """``1 detection``, ``3 detections``."""
    return f"{count} detection" if count == 1 else f"{count} detections"


def _num(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 1e6 else f"{value:.3g}"

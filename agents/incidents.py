"""The first incident manager: one open incident per fingerprint, resolved on recovery.

A detector raising its alarm opens an incident; a repeat for a fingerprint that
is already open changes nothing; the alarm clearing resolves it. The incidents
issue replaces this with updates, correlation, flapping and silences.
"""

from __future__ import annotations

from dataclasses import dataclass

from playbooks.incident import (
    Incident,
    Resolution,
    Severity,
    Signal,
    Status,
    Transition,
    fingerprint,
    incident_id,
)

CRITICAL_RATIO = 5.0  # observed at 5x its normal level pages as critical


@dataclass(frozen=True)
class Detection:
    """A detector's alarm rising or clearing on one series."""

    kind: str
    series: str
    labels: dict[str, str]
    signal: Signal
    cleared: bool = False
    adapted: bool = False  # cleared because the level became the detector's new normal


class IncidentManager:
    """Turns detections into incident events; state is per worker for now."""

    def __init__(self) -> None:
        self._open: dict[str, Incident] = {}

    @property
    def open_incidents(self) -> list[Incident]:
        """The incidents currently open on this worker."""
        return list(self._open.values())

    def on_detection(self, detection: Detection) -> Incident | None:
        """The incident event a detection causes, or None when it changes nothing."""
        labels = detection.labels
        service = labels.get("service")
        model = labels.get("model")
        subject = f"{service or '-'}|{model or '-'}"
        key = fingerprint(detection.kind, subject, detection.series)
        current = self._open.get(key)
        if detection.cleared:
            if current is None:
                return None
            del self._open[key]
            return current.model_copy(
                update={
                    "transition": Transition.RESOLVED,
                    "status": Status.RESOLVED,
                    "last_seen": detection.signal.at,
                    "resolution": Resolution.NEW_NORMAL
                    if detection.adapted
                    else Resolution.RECOVERED,
                    "signals": [*current.signals, detection.signal][-20:],
                }
            )
        signal = detection.signal
        if current is not None:
            return None  # already open: a repeat never opens a second incident
        opened = Incident(
            id=incident_id(key, signal.at),
            fingerprint=key,
            kind=detection.kind,
            transition=Transition.OPENED,
            status=Status.OPEN,
            severity=_severity(signal),
            title=f"{detection.kind.replace('_', ' ').capitalize()} on {service or model or detection.series}",
            service=service,
            model=model,
            model_version=labels.get("model_version"),
            first_seen=signal.at,
            last_seen=signal.at,
            signals=[signal],
            labels=dict(labels),
        )
        self._open[key] = opened
        return opened


def _severity(signal: Signal) -> Severity:
    if signal.baseline > 0 and signal.observed / signal.baseline >= CRITICAL_RATIO:
        return Severity.CRITICAL
    return Severity.WARNING

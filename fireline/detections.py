"""What flows into the incident manager, on the internal ``fireline.detections`` topic.

Detectors run where the events land (any partition, any worker); the incident
manager must see every input about one subject in one place, in order. So
detections, changes, lifecycle ticks and human commands are all published to one
topic keyed by the subject (a model or a service): one partition, hence one
worker, owns a subject's incidents. Correlation and dedup need no locks, and two
workers can never open the same incident.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fireline.incident import (  # the comparison models are defined with the incident
    Change,
    ComparedFigureModel,  # noqa: F401 - re-exported: detections carry it too
    EvidencePoint,
    Severity,
    Signal,
    VersionComparisonModel,
)


class Detection(BaseModel):
    """A detector's alarm rising, still on, or clearing on one series."""

    model_config = ConfigDict(frozen=True)

    kind: str
    series: str
    labels: dict[str, str]
    signal: Signal
    cleared: bool = False
    adapted: bool = False  # cleared because the level became the detector's new normal
    refresh: bool = False  # the alarm is still on: re-sent so a lost alarm can expire
    evidence: list[EvidencePoint] = Field(default_factory=list)
    # A source that judges for itself (an Alertmanager alert) sets these; detectors
    # leave them empty and the incident manager derives both.
    severity: Severity | None = None  # else from observed vs. baseline
    fingerprint: str = ""  # the source's identity of the problem, else kind|subject|version|series
    # A version_regression: the worse (labels' model_version) and the compared version's figures.
    comparison: VersionComparisonModel | None = None

    @property
    def subject_key(self) -> str:
        """The correlation group this detection belongs to."""
        return subject_key(self.labels, self.series)


def subject_key(labels: dict[str, str], series: str) -> str:
    """A model if the labels name one, else a service, else the series itself.

    >>> subject_key({"service": "api", "model": "fraud"}, "latency_ms")
    'model:fraud'
    >>> subject_key({"service": "api"}, "latency_ms")
    'service:api'
    """
    if model := labels.get("model"):
        return f"model:{model}"
    if service := labels.get("service"):
        return f"service:{service}"
    return f"series:{series}"


class DetectionInput(BaseModel):
    """A detection to fold into the subject's incidents."""

    type: Literal["detection"] = "detection"
    detection: Detection


class ChangeInput(BaseModel):
    """A production change (e.g. a model version going live) to link to incidents."""

    type: Literal["change"] = "change"
    change: Change


class TickInput(BaseModel):
    """Time passes: run auto-resolve, expiry, flapping and silence checks of a partition."""

    type: Literal["tick"] = "tick"


class CommandInput(BaseModel):
    """A human acknowledging or resolving an incident through the API."""

    type: Literal["command"] = "command"
    command: Literal["acknowledge", "resolve", "escalate"]
    incident_id: str
    by: str = Field(min_length=1, max_length=200)


IncidentInput = Annotated[
    DetectionInput | ChangeInput | TickInput | CommandInput, Field(discriminator="type")
]
INPUT_ADAPTER: TypeAdapter[IncidentInput] = TypeAdapter(IncidentInput)

"""The incident: the contract playbooks match on and ``fireline.incidents`` carries.

Every state change of an incident is published as JSON keyed by ``id``; the event
with the highest ``revision`` is the incident's current state. The id is derived
from the fingerprint of its first signal and that signal's event time, so every
worker (and a restarted one) computes the same id for the same problem.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """Where an incident is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # a human is on it; still open
    RESOLVED = "resolved"


class Transition(StrEnum):
    """The state change an incident event announces."""

    OPENED = "opened"
    UPDATED = "updated"  # a new or repeated signal, a linked change, silence or flapping status
    ESCALATED = "escalated"  # severity rose
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"  # recurred shortly after it resolved: the same incident again


class Resolution(StrEnum):
    """Why an incident resolved."""

    RECOVERED = "recovered"  # every signal went back to its baseline
    NEW_NORMAL = "new_normal"  # a signal stayed at a new level the detector now treats as normal
    QUIET = "quiet"  # its detectors stopped reporting it (the series stopped, or a restart)
    MANUAL = "manual"  # a human resolved it


class Severity(StrEnum):
    """How bad it is; playbooks can require a minimum."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Orders severities: info < warning < critical."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Signal(BaseModel):
    """One detection that is part of an incident."""

    model_config = ConfigDict(frozen=True)

    detector: str = Field(description="Which detector fired, e.g. latency_spike.")
    series: str = Field(description="The metric series or feature the detector watched.")
    observed: float = Field(description="The value (or test statistic) that raised it.")
    baseline: float = Field(description="What the detector took as normal; 0 if no level.")
    score: float = Field(ge=0, le=1, description="How anomalous, 0 to 1.")
    at: float = Field(description="Event time of the detection, epoch seconds.")
    kind: str = Field(default="", description="What the detector found, e.g. latency_spike.")
    fingerprint: str = Field(default="", description="The problem this signal belongs to.")
    cleared: bool = Field(default=False, description="The detector's alarm cleared here.")
    message: str = Field(default="", description="The detector's own words, if it has any.")
    selector: str = Field(
        default="",
        description="The series as a PromQL selector to paste into Prometheus, e.g. "
        'latency_ms{model="fraud"}; empty when it is not a Prometheus series.',
    )


class EvidencePoint(BaseModel):
    """One recent point of a signal's series, for charts."""

    model_config = ConfigDict(frozen=True)

    at: float = Field(description="Event time, epoch seconds.")
    value: float = Field(description="The series' value then.")


class Evidence(BaseModel):
    """The recent points of one series up to its detection, with the baseline it was judged by."""

    model_config = ConfigDict(frozen=True)

    series: str = Field(description="The series the points belong to.")
    baseline: float = Field(description="The normal level the detector judged them by.")
    detected_at: float = Field(description="Event time of the detection, epoch seconds.")
    points: list[EvidencePoint] = Field(default_factory=list, description="Oldest first.")


class Change(BaseModel):
    """Something that changed in production, e.g. a new model version going live."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="e.g. model_version_change.")
    model: str | None = Field(default=None, description="The model that changed, if any.")
    service: str | None = Field(default=None, description="The service that changed, if any.")
    version: str | None = Field(default=None, description="The version now live.")
    previous_version: str | None = Field(default=None, description="The version it replaced.")
    at: float = Field(description="Event time of the first event showing the change.")

    def describe(self) -> str:
        """One line for humans."""
        subject = self.model or self.service or "?"
        if self.kind == "model_version_change":
            was = f" (was v{self.previous_version})" if self.previous_version else ""
            return f"{subject} v{self.version} went live{was}"
        return f"{self.kind} on {subject}"


class ComparedFigureModel(BaseModel):
    """One figure of two versions of a model (mirrors ``detectors.monitor.comparison``)."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(description="e.g. error_rate, mean_score, estimated_accuracy.")
    baseline: float = Field(description="The baseline version's value.")
    candidate: float = Field(description="The candidate version's value.")
    baseline_events: int = Field(ge=0, description="Events (or labels) behind the baseline's.")
    candidate_events: int = Field(ge=0, description="Events (or labels) behind the candidate's.")
    worse: bool = Field(description="The candidate is worse by more than the practical margin.")
    estimated: bool = Field(default=False, description="From scores (CBPE), not from labels.")
    detail: str = Field(default="", description="e.g. the class a class-mix figure is about.")


class VersionComparisonModel(BaseModel):
    """A version_regression's evidence: both versions' figures, side by side."""

    model_config = ConfigDict(frozen=True)

    baseline_version: str = Field(description="The version compared with (what serves well).")
    candidate_version: str = Field(description="The version judged (the new one).")
    figures: tuple[ComparedFigureModel, ...] = Field(
        default=(), description="Each figure of both versions; `worse` marks the regressed ones."
    )
    mode: Literal["deploy", "canary"] = Field(
        default="deploy",
        description="deploy: against the baseline before it; canary: both on the same window.",
    )
    accepted: bool = Field(default=False, description="The candidate became the new baseline.")


class Incident(BaseModel):
    """One real problem, as the incident manager tracks it."""

    id: str = Field(description="Stable: from the first signal's fingerprint and event time.")
    fingerprint: str = Field(description="The fingerprint of the signal that opened it.")
    kind: str = Field(description="What broke, e.g. latency_spike (the first signal's kind).")
    transition: Transition = Field(description="The state change this event announces.")
    status: Status = Field(description="Where it is in its life; acknowledged is still open.")
    severity: Severity = Field(description="The peak over its signals.")
    title: str = Field(description="One line for humans, e.g. Latency spike on fraud-api.")
    service: str | None = Field(default=None, description="The service label of its signal.")
    model: str | None = Field(default=None, description="The model label of its signal.")
    model_version: str | None = Field(default=None, description="The model's version label.")
    subject_key: str = Field(default="", description="The correlation group: model or service.")
    first_seen: float = Field(description="Event time of the first signal, epoch seconds.")
    last_seen: float = Field(description="Event time of the latest signal, epoch seconds.")
    count: int = Field(default=1, ge=1, description="Detections folded into this incident.")
    revision: int = Field(default=1, ge=0, description="Grows by one with every state change.")
    fingerprints: list[str] = Field(default_factory=list, description="Every problem grouped in.")
    signals: list[Signal] = Field(default_factory=list, description="Latest first-class signals.")
    evidence: list[Evidence] = Field(default_factory=list, description="Per series, for charts.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="The labels of the series that opened it."
    )
    changes: list[Change] = Field(default_factory=list, description="Changes shortly before it.")
    likely_cause: str | None = Field(
        default=None,
        description="The change that came first: fraud v2 went live (was v1) 9 min before.",
    )
    comparison: VersionComparisonModel | None = Field(
        default=None,
        description="Both versions' figures side by side, from the latest version_regression "
        "signal (the worse version is model_version).",
    )
    related: list[str] = Field(default_factory=list, description="Ids of related incidents.")
    flapping: bool = Field(default=False, description="Opening and clearing too often.")
    silenced_by: str | None = Field(default=None, description="Id of the matching silence.")
    acknowledged_by: str | None = Field(default=None, description="Who acknowledged it.")
    acknowledged_at: float | None = Field(default=None, description="When, epoch seconds.")
    resolved_at: float | None = Field(default=None, description="When it resolved, epoch seconds.")
    resolved_by: str | None = Field(default=None, description="Who resolved it by hand.")
    resolution: Resolution | None = Field(default=None, description="Set when resolved.")
    reopened: int = Field(default=0, ge=0, description="Times it recurred after resolving.")

    @property
    def subject(self) -> str:
        """The service and/or model the incident is about, for humans."""
        parts = []
        if self.service:
            parts.append(self.service)
        if self.model:
            version = f" v{self.model_version}" if self.model_version else ""
            parts.append(f"model {self.model}{version}")
        return " / ".join(parts) or "unknown subject"

    @property
    def notify(self) -> bool:
        """Whether this event may notify anyone: not while silenced or flapping."""
        return self.silenced_by is None and not self.flapping

    @property
    def is_open(self) -> bool:
        """Open or acknowledged, i.e. not resolved."""
        return self.status is not Status.RESOLVED


def fingerprint(kind: str, subject: str, version: str | None, series: str) -> str:
    """The identity of a problem, independent of when it happens.

    >>> fingerprint("latency_spike", "fraud-api", "7", "latency_ms{service=fraud-api}")
    'latency_spike|fraud-api|7|latency_ms{service=fraud-api}'
    """
    return f"{kind}|{subject}|{version or '-'}|{series}"


def incident_id(fingerprint_: str, first_seen: float) -> str:
    """A stable id: the same problem seen by any worker gets the same id."""
    digest = hashlib.sha256(f"{fingerprint_}|{first_seen:.3f}".encode()).hexdigest()
    return f"inc-{digest[:16]}"

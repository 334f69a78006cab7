"""The incident: the contract playbooks match on and ``fireline.incidents`` carries.

Incidents are published as JSON keyed by ``id``. The id is derived from the
fingerprint and the event time of the first detection, so every worker (and a
restarted one) computes the same id for the same problem.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """Where an incident is in its life."""

    OPEN = "open"
    RESOLVED = "resolved"


class Transition(StrEnum):
    """The state change an incident event announces."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """Why an incident resolved."""

    RECOVERED = "recovered"  # the signal went back to its baseline
    NEW_NORMAL = "new_normal"  # the signal stayed at a new level the detector now treats as normal


class Severity(StrEnum):
    """How bad it is; playbooks can require a minimum."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Signal(BaseModel):
    """One detection that is part of an incident."""

    model_config = ConfigDict(frozen=True)

    detector: str
    series: str = Field(description="The metric series or feature the detector watched.")
    observed: float
    baseline: float
    score: float = Field(ge=0, le=1)
    at: float = Field(description="Event time of the detection, epoch seconds.")


class Incident(BaseModel):
    """One real problem, as the incident manager tracks it."""

    id: str
    fingerprint: str
    kind: str = Field(description="What broke, e.g. latency_spike.")
    transition: Transition
    status: Status
    severity: Severity
    title: str
    service: str | None = None
    model: str | None = None
    model_version: str | None = None
    first_seen: float
    last_seen: float
    count: int = Field(default=1, ge=1, description="Detections folded into this incident.")
    signals: list[Signal] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    resolution: Resolution | None = Field(default=None, description="Set when resolved.")

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


def fingerprint(kind: str, subject: str, series: str) -> str:
    """The identity of a problem, independent of when it happens."""
    return f"{kind}|{subject}|{series}"


def incident_id(fingerprint_: str, first_seen: float) -> str:
    """A stable id: the same problem seen by any worker gets the same id."""
    digest = hashlib.sha256(f"{fingerprint_}|{first_seen:.3f}".encode()).hexdigest()
    return f"inc-{digest[:16]}"

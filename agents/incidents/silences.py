"""Silences and maintenance windows: matching incidents are recorded but notify nobody.

A silence is a set of matchers (field → glob) and a time range. Silences are
published to the ``fireline.silences`` topic keyed by id (an empty value removes
one), so every worker holds them all.
"""

from __future__ import annotations

import secrets
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fireline.durations import parse_duration
from fireline.incident import Incident

MATCHABLE = ("kind", "model", "service", "model_version", "severity", "subject_key", "title")


def _check_matchers(matchers: dict[str, str]) -> dict[str, str]:
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    for name in matchers:
        if name not in MATCHABLE and not (name.startswith("labels.") and len(name) > 7):
            raise ValueError(
                f"unknown matcher {name!r}: expected one of {', '.join(MATCHABLE)} or labels.<name>"
            )
    return matchers


class SilenceRequest(BaseModel):
    """What a client sends to create a silence."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(description="Field → glob, e.g. {'model': 'fraud*'}.")
    duration: str | None = Field(default=None, description="How long, e.g. 1h. Or give ends_at.")
    starts_at: float | None = Field(default=None, description="Epoch seconds; default now.")
    ends_at: float | None = Field(default=None, description="Epoch seconds.")
    comment: str = Field(default="", max_length=1000)
    created_by: str = Field(default="api", min_length=1, max_length=200)

    @field_validator("matchers")
    @classmethod
    def _known_matchers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_matchers(value)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceRequest:
        if (self.duration is None) == (self.ends_at is None):
            raise ValueError("give exactly one of duration or ends_at")
        if self.duration is not None:
            parse_duration(self.duration)
        return self

    def to_silence(self, now: float) -> Silence:
        """The silence this request creates, with a fresh id."""
        starts = self.starts_at if self.starts_at is not None else now
        if self.duration is not None:
            ends = starts + parse_duration(self.duration)
        else:
            assert self.ends_at is not None  # checked by _one_end
            ends = self.ends_at
        if ends <= starts:
            raise ValueError("the silence ends before it starts")
        return Silence(
            id=f"sil-{secrets.token_hex(6)}",
            matchers=self.matchers,
            starts_at=starts,
            ends_at=ends,
            comment=self.comment,
            created_by=self.created_by,
            created_at=now,
        )


class Silence(BaseModel):
    """Matching incidents are marked silenced and trigger no notifications until ends_at."""

    model_config = ConfigDict(frozen=True)

    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str
    created_at: float

    @field_validator("matchers")
    @classmethod
    def _known_matchers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_matchers(value)

    def active(self, now: float) -> bool:
        """Whether the silence is in force at ``now``."""
        return self.starts_at <= now < self.ends_at

    def matches(self, incident: Incident) -> bool:
        """Whether every matcher's glob matches the incident's field.

        >>> from fireline.incident import Severity, Status, Transition
        >>> i = Incident(id="inc-1", fingerprint="f", kind="latency_spike", title="t",
        ...              transition=Transition.OPENED, status=Status.OPEN,
        ...              severity=Severity.WARNING, model="fraud", first_seen=0, last_seen=0)
        >>> s = Silence(id="s", matchers={"model": "fraud*", "severity": "warning"},
        ...             starts_at=0, ends_at=10, created_by="me", created_at=0)
        >>> s.matches(i)
        True
        """
        for name, pattern in self.matchers.items():
            if name.startswith("labels."):
                value = incident.labels.get(name[7:])
            else:
                raw = getattr(incident, name)
                value = None if raw is None else str(raw)
            if value is None or not fnmatchcase(value, pattern):
                return False
        return True


def silence_for(incident: Incident, silences: list[Silence], now: float) -> str | None:
    """The id of the first active silence matching the incident, if any."""
    for silence in silences:
        if silence.active(now) and silence.matches(incident):
            return silence.id
    return None

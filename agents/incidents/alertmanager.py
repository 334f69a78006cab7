"""Alertmanager's webhook payload (version 4) as detections for the incident manager. Pure.

Each alert is one signal about one subject, so a Prometheus alert gets what a
detector's alarm gets: dedup, correlation with drift on the same model, Slack
threads and playbooks. The mapping:

- kind: ``alert:<alertname>`` (playbooks match it with globs: ``alert:*``);
- subject: the ``model`` label, else ``service``, else ``job`` (which becomes the
  incident's ``service``); an alert with none of them is a subject of its own;
- severity: the ``severity`` label (``critical``, ``warning``, ``info``; ``none``
  is info; missing or anything else is warning);
- fingerprint: ``alert:<alertname>|<Alertmanager's fingerprint>`` (one per label set);
- series: the ``ALERTS{...}`` selector of the alert, which pastes into Prometheus;
- a firing alert raises its signal, or keeps it alive when it is already open
  (Alertmanager re-sends firing alerts); a resolved one clears it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from fireline.detections import Detection
from fireline.errors import EventError
from fireline.incident import Severity, Signal

PAYLOAD_VERSION = "4"
DETECTOR = "alertmanager"
KIND_PREFIX = "alert:"
MAX_MESSAGE_CHARS = 1000  # an annotation is free text; the detection goes through Kafka

SEVERITIES = {
    "critical": Severity.CRITICAL,
    "warning": Severity.WARNING,
    "info": Severity.INFO,
    "none": Severity.INFO,  # kube-prometheus's level for alerts that only inform
}


class Alert(BaseModel):
    """One alert of the payload; fields fireline does not use are ignored."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    fingerprint: str = Field(min_length=1)

    @field_validator("labels")
    @classmethod
    def _named(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise ValueError("the alertname label is missing")
        return labels

    @property
    def name(self) -> str:
        """The ``alertname`` label."""
        return self.labels["alertname"]


class Payload(BaseModel):
    """The envelope; its alerts are validated one by one (see :func:`read_payload`)."""

    version: str
    alerts: list[Any]
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")


@dataclass(frozen=True)
class Intake:
    """What a payload brought: a detection per good alert, a problem per bad one."""

    detections: list[Detection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    truncated: int = 0  # alerts Alertmanager left out (its max_alerts)


def read_payload(body: bytes) -> Intake:
    """The detections of a webhook body; EventError when the body as a whole is unusable.

    One bad alert does not lose the others: it is reported in ``problems``.
    """
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError("not_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventError("bad_payload", "the body must be a JSON object (a webhook payload)")
    try:
        payload = Payload.model_validate(raw)
    except ValidationError as exc:
        raise EventError("bad_payload", f"invalid webhook payload: {_problems(exc)}") from exc
    if payload.version != PAYLOAD_VERSION:
        raise EventError(
            "bad_version",
            f"webhook payload version {payload.version!r} is not supported; "
            f"fireline reads version {PAYLOAD_VERSION} (Alertmanager 0.19 and later)",
        )
    detections, problems = [], []
    for index, raw_alert in enumerate(payload.alerts):
        try:
            detections.append(alert_detection(Alert.model_validate(raw_alert)))
        except ValidationError as exc:
            problems.append(f"alerts[{index}]{_name_of(raw_alert)}: {_problems(exc)}")
    return Intake(detections, problems, payload.truncated_alerts)


def alert_detection(alert: Alert) -> Detection:
    """The detection one alert stands for (see the module docstring)."""
    kind = f"{KIND_PREFIX}{alert.name}"
    series = alert_series(alert.labels)
    firing = alert.status == "firing"
    starts = alert.starts_at.timestamp()
    # Firing alerts carry no end (or a guess); a resolved one ends when it stopped firing.
    at = starts if firing or alert.ends_at is None else max(starts, alert.ends_at.timestamp())
    words = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    signal = Signal(
        detector=DETECTOR,
        series=series,
        observed=1.0 if firing else 0.0,  # the value of ALERTS{...}: 1 while firing
        baseline=0.0,
        score=1.0 if firing else 0.0,
        at=at,
        message=words[:MAX_MESSAGE_CHARS],
    )
    return Detection(
        kind=kind,
        series=series,
        labels=subject_labels(alert.labels),
        signal=signal,
        cleared=not firing,
        # A repeat of a firing alert keeps its open signal alive instead of counting
        # as a new detection; the manager opens an incident for it when none is open.
        refresh=firing,
        severity=alert_severity(alert.labels),
        fingerprint=f"{kind}|{alert.fingerprint}",
    )


def subject_labels(labels: dict[str, str]) -> dict[str, str]:
    """The alert's labels, with ``job`` as the service when neither model nor service is named.

    >>> subject_labels({"alertname": "Down", "job": "api"})
    {'alertname': 'Down', 'job': 'api', 'service': 'api'}
    """
    if labels.get("model") or labels.get("service") or not labels.get("job"):
        return dict(labels)
    return {**labels, "service": labels["job"]}


def alert_severity(labels: dict[str, str]) -> Severity:
    """The ``severity`` label as a fireline severity; warning when missing or unknown."""
    return SEVERITIES.get(labels.get("severity", "").strip().lower(), Severity.WARNING)


def alert_series(labels: dict[str, str]) -> str:
    """The alert's Prometheus selector: ``ALERTS{alertname="X",...}`` (alertname first).

    >>> alert_series({"severity": "critical", "alertname": "Down", "job": "api"})
    'ALERTS{alertname="Down",job="api",severity="critical"}'
    """
    names = sorted(labels, key=lambda name: (name != "alertname", name))
    pairs = ",".join(f'{name}="{_escape(labels[name])}"' for name in names)
    return f"ALERTS{{{pairs}}}"


def _escape(value: str) -> str:
    """A label value as PromQL writes it inside double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _name_of(raw_alert: Any) -> str:
    """`` (HighErrorRate)`` when the bad alert has a name to recognise it by."""
    labels = raw_alert.get("labels") if isinstance(raw_alert, dict) else None
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return f" ({name})" if isinstance(name, str) and name else ""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )

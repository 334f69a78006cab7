"""Event contracts of the input topics: prediction, label and metric (the public API).

Unknown extra fields are accepted and ignored; everything else is checked: numbers
must be finite, strings must be strings, required fields must be present. Every
``timestamp`` is ISO 8601 with a zone or epoch seconds and is held as epoch seconds.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat, StrictStr

__all__ = ["EventModel", "LabelEvent", "MetricEvent", "PredictionEvent", "Timestamp"]


def _epoch_seconds(value: Any) -> float:
    """Accept epoch seconds (a finite number) or ISO 8601 with a zone."""
    if isinstance(value, bool):
        # pydantic only turns ValueError into a validation error, so not TypeError here.
        raise ValueError("timestamp must be epoch seconds or ISO 8601, got a boolean")  # noqa: TRY004
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("timestamp must be a finite number")
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no zone; add Z or +00:00")
        return parsed.timestamp()
    raise ValueError("timestamp must be epoch seconds or an ISO 8601 string with a zone")


Timestamp = Annotated[float, BeforeValidator(_epoch_seconds)]
FiniteNumber = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=256)]
FeatureValue = FiniteNumber | StrictStr | None


class EventModel(BaseModel):
    """Common configuration of all input events."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    timestamp: Timestamp


class PredictionEvent(EventModel):
    """One prediction logged by a model server.

    Example::

        {"timestamp": "2026-11-21T10:00:00.250Z", "model": "fraud", "model_version": "7",
         "prediction_id": "p-000123", "features": {"amount": 42.5, "country": "DE"},
         "prediction": 0.07, "latency_ms": 12.5}
    """

    model: Name
    model_version: Name
    prediction_id: Name
    features: dict[StrictStr, FeatureValue]
    prediction: FiniteNumber | StrictStr | dict[StrictStr, Any]
    latency_ms: Annotated[FiniteNumber, Field(ge=0)] | None = None
    event_id: Name | None = None


class LabelEvent(EventModel):
    """The ground truth for an earlier prediction; arrives late.

    Example::

        {"timestamp": 1795255800.0, "prediction_id": "p-000123", "model": "fraud", "label": 1}
    """

    prediction_id: Name
    model: Name
    label: FiniteNumber | StrictStr | bool


class MetricEvent(EventModel):
    """One sample of an infrastructure metric, shaped like a Prometheus sample.

    Example::

        {"timestamp": 1795255200.25, "name": "latency_ms", "value": 48.0,
         "labels": {"service": "fraud-api", "model": "fraud"}}
    """

    name: Name
    value: FiniteNumber
    labels: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    def series_key(self) -> str:
        """A stable identity of the series: name plus sorted labels."""
        if not self.labels:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"

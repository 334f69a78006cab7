"""Event contracts of the input topics: prediction, label and metric (the public API).

These models are the contract; the validator decodes most records into their
fast twins (agents/pipelines/fast_events.py) and falls back to them for the rest.
Unknown extra fields are accepted and ignored; everything else is checked: numbers
must be finite, strings must be strings, required fields must be present. Every
``timestamp`` is ISO 8601 with a zone or epoch seconds and is held as epoch seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, StrictFloat, StrictStr
from pydantic_core import core_schema

from detectors.monitor import records

__all__ = [
    "EventModel",
    "LabelEvent",
    "MetricEvent",
    "PredictionEvent",
    "Timestamp",
    "series_key",
]


def _epoch_seconds(value: datetime) -> float:
    return value.timestamp()


# Built as a core schema so the hot path stays in pydantic-core: a number is
# checked natively and only ISO strings reach Python (for the epoch conversion).
_TIMESTAMP_SCHEMA = core_schema.union_schema(
    [
        core_schema.float_schema(strict=True, allow_inf_nan=False),
        core_schema.no_info_after_validator_function(
            _epoch_seconds, core_schema.datetime_schema(strict=True, tz_constraint="aware")
        ),
    ],
    custom_error_type="timestamp",
    custom_error_message="expected epoch seconds or ISO 8601 with a zone, e.g. 2026-11-21T10:00:00Z",
)
Timestamp = Annotated[float, GetPydanticSchema(lambda _type, _handler: _TIMESTAMP_SCHEMA)]
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

    def to_record(self) -> records.Prediction:
        """The plain record the prediction-log detectors consume."""
        return records.Prediction(
            self.timestamp,
            self.model,
            self.model_version,
            self.prediction_id,
            self.features,
            self.prediction,
            self.latency_ms,
        )


class LabelEvent(EventModel):
    """The ground truth for an earlier prediction; arrives late.

    Example::

        {"timestamp": 1795255800.0, "prediction_id": "p-000123", "model": "fraud", "label": 1}
    """

    prediction_id: Name
    model: Name
    label: FiniteNumber | StrictStr | bool

    def to_record(self) -> records.Label:
        """The plain record the prediction-log detectors consume."""
        return records.Label(self.timestamp, self.model, self.prediction_id, self.label)


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
        return series_key(self.name, self.labels)


def series_key(name: str, labels: dict[str, str]) -> str:
    """The series of a metric sample: its name plus its sorted labels."""
    if not labels:
        return name
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"

"""Fast twins of the event contracts: msgspec decodes a record straight into them.

The contract stays the pydantic models of :mod:`agents.pipelines.events`; they
define what is accepted and, for a record that breaks it, the dead letter's
reason and detail. But building a pydantic model costs more per event than
most detectors do (and each is an object the garbage collector keeps
walking), so the :class:`~agents.pipelines.ingest.Validator` first tries
msgspec, which decodes a record into a frozen, untracked struct in one C call.
A struct is only kept when it holds exactly what the contract would have
given; for anything else (an ISO timestamp, an object as the prediction, a
value msgspec refuses) the decoder answers None and the record goes through
pydantic as before, so every dead letter still comes from pydantic.
``tests/property/test_fast_decode.py`` checks both paths agree on arbitrary bytes.

A twin names its contract (``contract``), and ``Validator(FastMetricEvent, ...)``
validates against it; the twins carry the contract's fields and methods
(``series_key``, ``to_record``), not pydantic's ``model_*`` API. The pipelines
take either (``AnyMetricEvent``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec
from pydantic import BaseModel

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent, series_key
from detectors.monitor import records

__all__ = [
    "AnyLabelEvent",
    "AnyMetricEvent",
    "AnyPredictionEvent",
    "FastLabelEvent",
    "FastMetricEvent",
    "FastPredictionEvent",
    "decoder",
    "from_contract",
]

# The contract's constraints msgspec can check natively; finiteness it checks too
# (it refuses NaN, Infinity and out-of-range numbers as malformed JSON).
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Latency = Annotated[float, msgspec.Meta(ge=0)]


class FastMetricEvent(msgspec.Struct, frozen=True, gc=False):
    """A :class:`MetricEvent` decoded by msgspec."""

    contract: ClassVar[type[BaseModel]] = MetricEvent

    timestamp: float
    name: _Name
    value: float
    labels: dict[str, str] = {}

    def series_key(self) -> str:
        """A stable identity of the series: name plus sorted labels."""
        return series_key(self.name, self.labels)


class FastPredictionEvent(msgspec.Struct, frozen=True, gc=False):
    """A :class:`PredictionEvent` decoded by msgspec."""

    contract: ClassVar[type[BaseModel]] = PredictionEvent

    timestamp: float
    model: _Name
    model_version: _Name
    prediction_id: _Name
    features: dict[str, float | str | None]
    prediction: float | str | dict[str, Any]
    latency_ms: _Latency | None = None
    event_id: _Name | None = None

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


class FastLabelEvent(msgspec.Struct, frozen=True, gc=False):
    """A :class:`LabelEvent` decoded by msgspec."""

    contract: ClassVar[type[BaseModel]] = LabelEvent

    timestamp: float
    prediction_id: _Name
    model: _Name
    label: float | str | bool

    def to_record(self) -> records.Label:
        """The plain record the prediction-log detectors consume."""
        return records.Label(self.timestamp, self.model, self.prediction_id, self.label)


#: What the pipelines take: an event of either path.
AnyMetricEvent = MetricEvent | FastMetricEvent
AnyPredictionEvent = PredictionEvent | FastPredictionEvent
AnyLabelEvent = LabelEvent | FastLabelEvent

T = TypeVar("T")


def decoder(twin: type[T]) -> Callable[[bytes], T | None]:
    """The msgspec decoder into ``twin``: the event, or None to ask the contract."""
    decode = msgspec.json.Decoder(twin).decode
    errors = (msgspec.MsgspecError, UnicodeDecodeError)

    def decoded(value: bytes) -> T | None:
        # msgspec skips unknown fields without checking their UTF-8 (pydantic
        # refuses the record); ASCII, the usual case, is valid UTF-8.
        if not value.isascii():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return None
        try:
            return decode(value)
        except errors:
            return None  # pydantic says why (or accepts what msgspec would not)

    return decoded


def from_contract(twin: type[T], event: BaseModel) -> T:
    """The twin of an event the contract accepted and msgspec did not (an ISO timestamp, ...)."""
    return twin(**{name: getattr(event, name) for name in twin.__struct_fields__})  # type: ignore[attr-defined]

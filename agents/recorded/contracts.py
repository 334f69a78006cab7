"""Which input contract a recorded line is meant for, and checking it against that contract.

Recorded files may mix metric samples, predictions and labels. A line is sent to
one validator by a look at its bytes (a prediction has ``"features"``, a label a
``"label"`` next to its ``"prediction_id"``); only when that fails is the line
parsed to see which contract its keys say it was meant for, so the error names
the right one (a prediction with a broken ``features`` is not called a bad label).
"""

from __future__ import annotations

import json
from typing import Any

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.fast_events import (
    AnyLabelEvent,
    AnyMetricEvent,
    AnyPredictionEvent,
    FastLabelEvent,
    FastPredictionEvent,
)
from agents.pipelines.ingest import RawRecord, Validator
from fireline.errors import EventError

InputEvent = AnyMetricEvent | AnyPredictionEvent | AnyLabelEvent
EVERY_CONTRACT: tuple[type[InputEvent], ...] = (MetricEvent, PredictionEvent, LabelEvent)
PREDICTION_LOG: tuple[type[InputEvent], ...] = (PredictionEvent, LabelEvent)
# The same contracts, decoded into their msgspec twins (agents/pipelines/fast_events.py):
# what a replay feeds the monitors, without a pydantic model per line.
FAST_PREDICTION_LOG: tuple[type[InputEvent], ...] = (FastPredictionEvent, FastLabelEvent)


class LineValidator:
    """Validates recorded lines against the contracts in ``accepted`` (the first is the default).

    ``validate`` returns the event or raises ``EventError`` with the reason and
    detail the worker would dead-letter the record with.
    """

    def __init__(
        self, max_bytes: int, accepted: tuple[type[InputEvent], ...] = EVERY_CONTRACT
    ) -> None:
        if not accepted:
            raise ValueError("a LineValidator needs at least one contract")
        # keyed by the contract (a twin's is its ``contract``)
        self._validators: dict[type[Any], Validator[Any]] = {
            _contract(model): Validator(model, max_bytes) for model in accepted
        }
        self._default = self._validators[_contract(accepted[0])]
        self._single = len(self._validators) == 1
        self._predictions = self._validators.get(PredictionEvent, self._default)
        self._labels = self._validators.get(LabelEvent, self._default)

    def validate(self, record: RawRecord) -> InputEvent:
        """The event of ``record``, checked by the contract it is meant for."""
        if self._single:
            event: InputEvent = self._default.validate_one(record)
            return event
        value = record.value or b""
        guess = self._guess(value)
        try:
            event = guess.validate_one(record)
        except EventError:
            meant = self._by_keys(value)
            if meant is None or meant is guess:
                raise
            event = meant.validate_one(record)
        return event

    def _guess(self, value: bytes) -> Validator[Any]:
        if b'"features"' in value:
            return self._predictions
        if b'"prediction_id"' in value:
            return self._labels if b'"label"' in value else self._predictions
        return self._default

    def _by_keys(self, value: bytes) -> Validator[Any] | None:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None  # the first validator already named what is wrong
        if not isinstance(parsed, dict):
            return None
        if "features" in parsed or "prediction" in parsed:
            return self._validators.get(PredictionEvent)
        if "label" in parsed:
            return self._validators.get(LabelEvent)
        if "name" in parsed or "value" in parsed:
            return self._validators.get(MetricEvent)
        return None


def _contract(model: type[InputEvent]) -> type[Any]:
    """The pydantic contract of ``model``: itself, or the one its msgspec twin names."""
    return getattr(model, "contract", model)

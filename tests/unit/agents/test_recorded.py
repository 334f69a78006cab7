"""Shared readers of recorded events (agents/recorded): contracts of mixed lines, the topic thread."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator

import pytest

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.fast_events import FastLabelEvent, FastPredictionEvent
from agents.pipelines.ingest import Record
from agents.recorded.contracts import (
    FAST_PREDICTION_LOG,
    PREDICTION_LOG,
    InputEvent,
    LineValidator,
)
from agents.recorded.rejects import Rejects, stop_at_first
from agents.recorded.topics import _on_a_thread
from fireline.errors import ConfigError, EventError

METRIC = b'{"timestamp": 1, "name": "latency_ms", "value": 12.5, "labels": {"service": "a"}}'
PREDICTION = (
    b'{"timestamp": 1, "model": "m", "model_version": "1", "prediction_id": "p", '
    b'"features": {"x": 1.0}, "prediction": 0.5}'
)
LABEL = b'{"timestamp": 2, "model": "m", "prediction_id": "p", "label": 1}'


def validate(line: bytes, validator: LineValidator | None = None) -> InputEvent:
    return (validator or LineValidator(65_536)).validate(Record("f", 0, 1, None, line))


def test_a_mixed_line_goes_to_the_contract_its_fields_name():
    assert isinstance(validate(METRIC), MetricEvent)
    assert isinstance(validate(PREDICTION), PredictionEvent)
    assert isinstance(validate(LABEL), LabelEvent)


@pytest.mark.parametrize(
    ("line", "contract"),
    [
        # a broken prediction is not called a bad label (nor a bad metric sample)
        (PREDICTION.replace(b'{"x": 1.0}', b'{"x": [1]}'), "PredictionEvent: features.x"),
        (b'{"timestamp": 1, "model": "m", "prediction_id": "p"}', "PredictionEvent: model_version"),
        (LABEL.replace(b'"timestamp": 2', b'"timestamp": "soon"'), "LabelEvent: timestamp"),
        (b'{"timestamp": 1, "name": "x"}', "MetricEvent: value"),
    ],
)
def test_a_bad_line_is_named_by_the_contract_it_was_meant_for(line, contract):
    with pytest.raises(EventError) as broken:
        validate(line)
    assert broken.value.detail.startswith(contract)


def test_the_twins_read_a_prediction_log_as_the_contracts_do():
    fast = LineValidator(65_536, FAST_PREDICTION_LOG)
    prediction, label = validate(PREDICTION, fast), validate(LABEL, fast)
    assert isinstance(prediction, FastPredictionEvent) and isinstance(label, FastLabelEvent)
    assert prediction.to_record() == validate(PREDICTION).to_record()
    assert label.to_record() == validate(LABEL).to_record()
    # a line the twin refuses is judged by the contract, named as the contract names it
    iso = PREDICTION.replace(b'"timestamp": 1', b'"timestamp": "2026-01-01T00:00:00Z"')
    assert isinstance(validate(iso, fast), FastPredictionEvent)
    for line in (PREDICTION.replace(b'{"x": 1.0}', b'{"x": [1]}'), LABEL.replace(b"2", b'"soon"')):
        with pytest.raises(EventError) as by_twin:
            validate(line, fast)
        with pytest.raises(EventError) as by_contract:
            validate(line, LineValidator(65_536, PREDICTION_LOG))
        assert (by_twin.value.reason, by_twin.value.detail) == (
            by_contract.value.reason,
            by_contract.value.detail,
        )


def test_a_model_named_features_does_not_make_a_label_a_prediction():
    label = LABEL.replace(b'"model": "m"', b'"model": "features"')
    assert isinstance(validate(label), LabelEvent)
    assert isinstance(validate(label, LineValidator(65_536, PREDICTION_LOG)), LabelEvent)


def test_rejects_count_every_one_and_stop_at_first_raises_with_where_and_why():
    rejects = Rejects()
    for n in range(25):
        rejects(f"f:{n}", EventError("not_json", "not JSON"))
    assert (rejects.count, len(rejects.examples)) == (25, 20)
    assert rejects.examples[0] == "f:0: not_json: not JSON"
    with pytest.raises(ConfigError, match=r"^f:3: missing_field: x$"):
        stop_at_first("f:3", EventError("missing_field", "x"))


def _source(batches: list[list[InputEvent]], fail: Exception | None = None):
    closed = threading.Event()

    async def read() -> AsyncGenerator[list[InputEvent], None]:
        try:
            for batch in batches:
                yield batch
            if fail is not None:
                raise fail
        finally:
            closed.set()

    return read, closed


def test_the_topic_thread_hands_over_every_event_in_order_and_its_failure():
    events = [validate(METRIC), validate(PREDICTION), validate(LABEL)]
    read, closed = _source([events[:2], events[2:]], fail=ConfigError("broker gone"))
    got: list[InputEvent] = []
    with pytest.raises(ConfigError, match="broker gone"):
        got.extend(_on_a_thread(read))
    assert got == events
    assert closed.wait(5)


def test_the_topic_thread_stops_when_the_reader_stops_early():
    batch = [validate(METRIC)] * 10
    read, closed = _source([batch] * 1000)  # more than the hand-over queue holds
    stream = _on_a_thread(read)
    assert next(stream) == batch[0]
    stream.close()
    assert closed.wait(5), "the source was not closed"
    assert not any(t.name == "topic-reader" for t in threading.enumerate())

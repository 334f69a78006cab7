import json

import pytest

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.ingest import Record, Validator

GOOD_METRIC = {
    "timestamp": 1795255200.25,
    "name": "latency_ms",
    "value": 48.0,
    "labels": {"service": "fraud-api"},
}


def record(value: bytes | None, offset: int = 0) -> Record:
    return Record("fireline.metrics", 2, offset, b"k", value)


def test_validator__accepts_good_events_and_ignores_extra_fields():
    raw = json.dumps({**GOOD_METRIC, "unit": "ms"}).encode()
    out = Validator(MetricEvent, 1024).validate([record(raw)])
    assert out.dead == []
    assert out.events == [
        MetricEvent(
            timestamp=1795255200.25, name="latency_ms", value=48.0, labels={"service": "fraud-api"}
        )
    ]


def test_validator__iso_timestamp_with_zone_is_epoch_seconds():
    raw = json.dumps({**GOOD_METRIC, "timestamp": "2026-11-21T10:00:00.250Z"}).encode()
    (event,) = Validator(MetricEvent, 1024).validate([record(raw)]).events
    assert event.timestamp == pytest.approx(1795255200.25)


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [
        (b"\xff\xfe{}", "not_utf8", "not UTF-8: invalid byte at position 0"),
        (b"{not json", "not_json", "not JSON: key must be a string at line 1 column 2"),
        (b"", "not_json", "empty message value (expected a JSON object)"),
        (b"[1, 2]", "not_object", "expected a JSON object for MetricEvent"),
        (b'{"timestamp": 1, "name": "x"}', "missing_field", "MetricEvent: value: Field required"),
        (
            b'{"timestamp": 1, "name": "x", "value": NaN}',
            "not_finite",
            "MetricEvent: value: Input should be a finite number, got nan",
        ),
        (
            b'{"timestamp": 1, "name": "x", "value": Infinity}',
            "not_finite",
            "MetricEvent: value: Input should be a finite number, got inf",
        ),
        (
            b'{"timestamp": 1, "name": "x", "value": "12"}',
            "wrong_type",
            "MetricEvent: value: Input should be a valid number, got '12'",
        ),
        (
            b'{"timestamp": 1, "name": "x", "value": true}',
            "wrong_type",
            "MetricEvent: value: Input should be a valid number, got True",
        ),
        (
            b'{"timestamp": "2026-11-21T10:00:00", "name": "x", "value": 1}',
            "invalid_value",
            (
                "MetricEvent: timestamp: expected epoch seconds or ISO 8601 with a zone,"
                " e.g. 2026-11-21T10:00:00Z, got '2026-11-21T10:00:00'"
            ),
        ),
        (
            b'{"timestamp": 1, "name": "x", "value": 1, "labels": {"a": 1}}',
            "wrong_type",
            "MetricEvent: labels.a: Input should be a valid string, got 1",
        ),
    ],
)
def test_validator__rejects_with_reason_and_detail(value, reason, detail):
    out = Validator(MetricEvent, 1024).validate([record(value, offset=7)])
    assert out.events == []
    (dead,) = out.dead
    assert (dead.reason, dead.detail) == (reason, detail)
    assert dead.record.value == value
    assert (dead.record.topic, dead.record.partition, dead.record.offset) == (
        "fireline.metrics",
        2,
        7,
    )


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [("yesterday", "invalid_value"), (True, "wrong_type"), ([1], "wrong_type")],
)
def test_validator__bad_timestamps(timestamp, reason):
    raw = json.dumps({**GOOD_METRIC, "timestamp": timestamp}).encode()
    (dead,) = Validator(MetricEvent, 1024).validate([record(raw)]).dead
    assert dead.reason == reason
    assert dead.detail.startswith("MetricEvent: timestamp: expected epoch seconds or ISO 8601")


def test_validator__nan_timestamp_is_not_finite():
    raw = b'{"timestamp": NaN, "name": "x", "value": 1}'
    (dead,) = Validator(MetricEvent, 1024).validate([record(raw)]).dead
    assert dead.reason == "not_finite"


def test_validator__oversized_event_is_rejected_before_parsing():
    raw = json.dumps({**GOOD_METRIC, "pad": "x" * 2000}).encode()
    (dead,) = Validator(MetricEvent, 1024).validate([record(raw)]).dead
    assert dead.reason == "oversized"
    assert dead.detail == f"message is {len(raw)} bytes, over the limit of 1024"


def test_validator__bad_event_does_not_take_its_neighbours_with_it():
    good = json.dumps(GOOD_METRIC).encode()
    out = Validator(MetricEvent, 1024).validate([record(good, 0), record(b"{", 1), record(good, 2)])
    assert len(out.events) == 2
    assert [d.record.offset for d in out.dead] == [1]


def test_prediction_event__readme_example_parses():
    raw = (
        b'{"timestamp": "2026-11-21T10:00:00.250Z", "model": "fraud", "model_version": "7",'
        b' "prediction_id": "p-000123", "features": {"amount": 42.5, "country": "DE", "age": null},'
        b' "prediction": 0.07, "latency_ms": 12.5}'
    )
    event = PredictionEvent.model_validate_json(raw)
    assert event.features == {"amount": 42.5, "country": "DE", "age": None}
    assert event.latency_ms == 12.5


def test_prediction_event__nan_feature_is_rejected():
    raw = b'{"timestamp": 1, "model": "m", "model_version": "1", "prediction_id": "p", "features": {"a": NaN}, "prediction": 1}'
    (dead,) = Validator(PredictionEvent, 4096).validate([record(raw)]).dead
    assert dead.reason == "not_finite"


def test_label_event__readme_example_parses():
    event = LabelEvent.model_validate_json(
        b'{"timestamp": 1795255800.0, "prediction_id": "p-000123", "model": "fraud", "label": 1}'
    )
    assert event.label == 1


def test_metric_event__series_key_sorts_labels():
    event = MetricEvent(timestamp=1, name="latency_ms", value=1, labels={"b": "2", "a": "1"})
    assert event.series_key() == "latency_ms{a=1,b=2}"


def test_dead_letter_record__keeps_original_bytes_and_cuts_huge_ones():
    from agents.pipelines.ingest import DeadLetter
    from agents.service.runtime import DLQ_MAX_VALUE_BYTES, _dead_letter_record

    small = DeadLetter(record(b"{bad", offset=3), "not_json", "not JSON: ...")
    key, value, headers = _dead_letter_record(small)
    assert (key, value) == (b"k", b"{bad")
    assert headers["fireline.error.offset"] == b"3"
    assert "fireline.error.truncated" not in headers
    huge = DeadLetter(record(b"x" * (DLQ_MAX_VALUE_BYTES + 10)), "oversized", "too big")
    _, value, headers = _dead_letter_record(huge)
    assert len(value) == DLQ_MAX_VALUE_BYTES
    assert headers["fireline.error.truncated"] == str(DLQ_MAX_VALUE_BYTES + 10).encode()

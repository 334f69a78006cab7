"""The fast decode path accepts exactly what the pydantic contract accepts, with equal values.

For arbitrary records (valid events, missing fields, wrong types, extra and
duplicate keys, NaN, Infinity and numbers beyond a float, ISO timestamps, lone
surrogates, bad UTF-8, truncated or random bytes), ``Validator(FastMetricEvent)``
and ``Validator(MetricEvent)`` (pydantic alone) must agree: both accept, with
the same values of the same types, or both dead-letter with the same reason
and detail.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.fast_events import FastLabelEvent, FastMetricEvent, FastPredictionEvent
from agents.pipelines.ingest import Record, Validator
from fireline.errors import EventError

PAIRS = [
    (Validator(MetricEvent, 4096), Validator(FastMetricEvent, 4096)),
    (Validator(PredictionEvent, 4096), Validator(FastPredictionEvent, 4096)),
    (Validator(LabelEvent, 4096), Validator(FastLabelEvent, 4096)),
]

# Tokens json.dumps cannot write, put in place of these strings after dumping.
RAW_TOKENS = {
    '"<huge>"': "1e400",
    '"<-huge>"': "-1e999",
    '"<big-int>"': "1" + "0" * 400,
    '"<tiny>"': "1e-400",
    '"<exp>"': "1E2",
    '"<neg-zero>"': "-0.0",
}

texts = st.text(max_size=8) | st.sampled_from(["", "a" * 256, "é" * 256, "a" * 257, "\ud800"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.sampled_from(list(RAW_TOKENS))
    | st.sampled_from(["2026-11-21T10:00:00Z", "2026-11-21T10:00:00", "2026-11-21T10:00:00+02:00"])
)
junk = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
)
names = st.sampled_from(["fraud", "latency_ms", "p-1", "7"]) | texts
numbers = st.floats(-1e12, 1e12) | st.integers(-(10**6), 10**6)
timestamps = numbers | st.sampled_from(["2026-11-21T10:00:00.250Z", "<huge>"])
feature_values = st.none() | numbers | texts | junk

FIELDS: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    MetricEvent: {
        "timestamp": timestamps,
        "name": names,
        "value": numbers,
        "labels": st.dictionaries(texts, texts | junk, max_size=3),
    },
    PredictionEvent: {
        "timestamp": timestamps,
        "model": names,
        "model_version": names,
        "prediction_id": names,
        "features": st.dictionaries(texts, feature_values, max_size=4),
        "prediction": numbers | texts | st.dictionaries(texts, junk, max_size=2) | junk,
        "latency_ms": numbers | st.none(),
        "event_id": names | st.none(),
    },
    LabelEvent: {
        "timestamp": timestamps,
        "prediction_id": names,
        "model": names,
        "label": numbers | texts | st.booleans() | junk,
    },
}


good_names = st.sampled_from(["fraud", "latency_ms", "p-1", "7", "é" * 256])
good_numbers = st.floats(-1e300, 1e300) | st.integers(-(2**70), 2**70)
GOOD: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    MetricEvent: {
        "timestamp": good_numbers,
        "name": good_names,
        "value": good_numbers,
        "labels": st.dictionaries(good_names, good_names, max_size=3),
    },
    PredictionEvent: {
        "timestamp": good_numbers,
        "model": good_names,
        "model_version": good_names,
        "prediction_id": good_names,
        "features": st.dictionaries(good_names, st.none() | good_numbers | good_names, max_size=4),
        "prediction": good_numbers | good_names | st.dictionaries(good_names, junk, max_size=2),
        "latency_ms": st.floats(0, 1e6) | st.none(),
        "event_id": good_names | st.none(),
    },
    LabelEvent: {
        "timestamp": good_numbers,
        "prediction_id": good_names,
        "model": good_names,
        "label": good_numbers | good_names | st.booleans(),
    },
}


@st.composite
def documents(draw: st.DrawFn, contract: type, clean: bool = False) -> bytes:
    """A JSON object shaped like ``contract``'s events, each field kept, dropped or replaced.

    ``clean``: mostly valid events (the values' equality is what is tested).
    """
    doc: dict[str, Any] = {}
    for field, valid in (GOOD if clean else FIELDS)[contract].items():
        choice = draw(st.sampled_from(["valid"] * 12 + ["junk", "missing"]))
        if choice != "missing":
            doc[field] = draw(valid if choice == "valid" or clean else junk)
    doc.update(draw(st.dictionaries(st.sampled_from(["extra", "unit", "x"]), junk, max_size=2)))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    for token, raw in RAW_TOKENS.items():
        text = text.replace(token, raw)
    if (
        draw(st.integers(0, 3)) == 0 and doc and not clean
    ):  # a duplicate key: JSON says nothing, both take the last
        field = draw(st.sampled_from(sorted(doc)))
        text = text[:-1] + f", {json.dumps(field)}: {json.dumps(draw(junk))}}}"
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate unescaped: bad UTF-8
    mutation = draw(st.sampled_from(["none"] * 8 + ([] if clean else ["insert", "truncate"])))
    if mutation == "insert":  # bad UTF-8 or stray bytes somewhere
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00"]))
            + data[at:]
        )
    elif mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    return data


def outcome(validator: Validator[Any], data: bytes) -> tuple[str, Any]:
    try:
        event = validator.validate_one(Record("t", 0, 0, None, data))
    except EventError as exc:
        return "dead", (exc.reason, exc.detail)
    fields = FastMetricEvent, FastPredictionEvent, FastLabelEvent
    twin = next(t for t in fields if t.contract is validator.contract)
    return "event", {name: getattr(event, name) for name in twin.__struct_fields__}


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down (1 and 1.0 differ here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def check(pair: int, data: bytes) -> None:
    contract, fast = PAIRS[pair]
    expected, got = outcome(contract, data), outcome(fast, data)
    assert expected[0] == got[0], (data, expected, got)
    if expected[0] == "dead":
        assert expected == got
    else:
        assert all(same(expected[1][k], got[1][k]) for k in expected[1]), (data, expected, got)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path__accepts_or_rejects_like_the_contract(data: st.DataObject) -> None:
    pair = data.draw(st.integers(0, 2))
    check(pair, data.draw(documents(PAIRS[pair][0].contract)))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path__gives_the_contracts_values_for_valid_events(data: st.DataObject) -> None:
    pair = data.draw(st.integers(0, 2))
    check(pair, data.draw(documents(PAIRS[pair][0].contract, clean=True)))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2), st.binary(max_size=64) | st.just(b""))
def test_fast_path__agrees_on_arbitrary_bytes(pair: int, data: bytes) -> None:
    check(pair, data)


def test_fast_path__decodes_a_good_event_without_pydantic() -> None:
    raw = b'{"timestamp": 1795255200.25, "name": "latency_ms", "value": 48, "labels": {"a": "b"}}'
    event = Validator(FastMetricEvent, 4096).validate_one(Record("t", 0, 0, None, raw))
    assert event == FastMetricEvent(1795255200.25, "latency_ms", 48.0, {"a": "b"})
    assert type(event.value) is float


def test_fast_path__iso_timestamp_goes_through_the_contract() -> None:
    raw = b'{"timestamp": "2026-11-21T10:00:00.250Z", "name": "latency_ms", "value": 48.0}'
    event = Validator(FastMetricEvent, 4096).validate_one(Record("t", 0, 0, None, raw))
    assert event == FastMetricEvent(1795255200.25, "latency_ms", 48.0, {})

"""Every detector's score stays finite and in [0, 1], and its alarm a bool, for any finite input.

The detectors are found by walking Detector's subclasses (tests/factories.py), so a
new one is covered without being listed. Each is built small (short windows and
warm-ups, where its parameters allow) so a few hundred values reach its judging.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors.base import Detector
from fireline.errors import DetectorError
from tests.factories import detector_classes

# Tried on every detector; each keeps only the parameters its model has.
SMALL = {
    "window": 40,
    "warmup": 10,
    "history": 10,
    "step": 5,
    "reference_size": 40,
    "min_reference": 20,
    "rest": 10,
}
CLASSES = detector_classes()
NUMERIC = [cls for cls in CLASSES if cls.input_kind != "categorical"]
CATEGORICAL = [cls for cls in CLASSES if cls.input_kind == "categorical"]

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
# Binary detectors mostly see 0/1, and any other finite value (which they skip).
numbers = finite | st.sampled_from([0.0, 1.0])
texts = st.text(max_size=4) | st.sampled_from(["a", "b"])


def small(cls: type[Detector[Any]]) -> Detector[Any]:
    fields = cls.Params.model_fields
    try:
        return cls(**{k: v for k, v in SMALL.items() if k in fields})
    except DetectorError:  # a rule of this detector's: its own defaults then
        return cls()


def check_every_chunk(cls: type[Detector[Any]], values: list[Any], chunk: int) -> None:
    detector = small(cls)
    times = 1.8e9 + 60.0 * np.arange(len(values))
    for start in range(0, len(values), chunk):
        detector.update(values[start : start + chunk], times[start : start + chunk])
        score = detector.score
        assert math.isfinite(score) and 0.0 <= score <= 1.0, (cls.__name__, score)
        assert type(detector.alarm) is bool, (cls.__name__, detector.alarm)


def test_the_walk_finds_both_families_and_builds_them_small():
    names = {cls.__name__ for cls in CLASSES}
    assert {"LatencySpike", "MetricEnsemble", "KSDrift", "ChiSquareDrift"} <= names
    assert all(small(cls).params != cls.Params.defaults() for cls in CLASSES)


@pytest.mark.parametrize("cls", NUMERIC, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(values=st.lists(numbers, max_size=300), chunk=st.integers(1, 40))
# The find: a finite 1e300 after a flat start was scored inf/inf = NaN.
@example(values=[0.0] * 30 + [1e300] * 5, chunk=7)
@example(values=[-1e308] * 30 + [1e308] * 5, chunk=7)
@example(values=[5e-324] * 30 + [-1.7976931348623157e308, 1.7976931348623157e308] * 20, chunk=3)
@example(values=[1e300, -1e300] * 40 + [0.0] * 40, chunk=11)
# A later find: a span of one subnormal step made MetricEnsemble's context model
# divide into an infinite scale (inf, then 0 * inf = NaN, as a symbol).
@example(values=[0.0, 5e-324] * 20, chunk=3)
@example(values=[5e-324, 0.0, 0.0] * 20, chunk=3)
def test_any_finite_numbers_keep_the_score_in_the_unit_interval(cls, values, chunk):
    check_every_chunk(cls, values, chunk)


@pytest.mark.parametrize("cls", CATEGORICAL, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(values=st.lists(texts, max_size=300), chunk=st.integers(1, 40))
@example(values=["a"] * 60 + ["b"] * 60, chunk=10)
def test_any_categories_keep_the_score_in_the_unit_interval(cls, values, chunk):
    check_every_chunk(cls, values, chunk)

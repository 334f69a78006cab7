"""LatencySpike's fast paths give exactly what the plain per-point algorithm gives.

The detector learns the common point (warm-up, or judged normal with no alarm
and no run under way) with its state in local variables, and computes the
baseline's median and MAD from one sort (``detectors.metric.robust``). The
references below are the plain algorithm: every point through ``_step``, the
baseline from NumPy's partition. Results and states must be equal, not close.
"""

from __future__ import annotations

import math
import pickle

from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors import LatencySpike
from detectors.base import MAX_MAGNITUDE
from detectors.metric.robust import median_and_mad, numpy_median_and_mad
from tests.property.chunks import cut

# Latency-like values on a few levels (so medians tie and runs repeat), spikes, and
# zeros of both signs (NumPy orders 0.0 and -0.0 as it likes: the fast path defers).
levels = st.sampled_from([0.0, -0.0, 5e-324, 1.0, 2.0, 2.5, 50.0, 400.0, 1e6])
latencies = st.lists(
    levels | st.floats(min_value=-MAX_MAGNITUDE, max_value=MAX_MAGNITUDE, allow_nan=False),
    min_size=1,
    max_size=400,
)
chunks = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20)
spike_params = st.fixed_dictionaries(
    {
        "window": st.integers(10, 60),
        "warmup": st.integers(1, 10),
        "threshold": st.sampled_from([0.5, 3.0, 6.0]),
        "min_ratio": st.sampled_from([1.0, 1.5]),
        "min_delta": st.sampled_from([0.0, 1.0]),
        "consecutive": st.integers(1, 4),
        "min_spread": st.sampled_from([0.0, 0.05]),
        "adapt_after": st.integers(5, 60),
    }
)


def plain_update(detector: LatencySpike, batch: list[float]) -> None:
    """MetricDetector.update of a finite batch, each point judged on its own through ``_step``."""
    params = detector.params
    detector._changes = []
    detector._cursor = -1
    for value in batch:
        if len(detector._history) < params.warmup:
            detector._score = 0.0
            detector._step(value, spikes=False)
            continue
        stale = detector._judged_since_refresh >= detector._refresh_every
        if stale or math.isnan(detector._baseline):
            median, mad = numpy_median_and_mad(detector._history)
            detector._baseline = median
            detector._spread = max(mad * 1.4826, params.min_spread * abs(median), 1e-9)
            detector._baseline_version += 1
            detector._judged_since_refresh = 0
        median, spread = detector._baseline, detector._spread
        z = (value - median) / spread
        detector._score = (1.0 if z == math.inf else z / (z + params.threshold)) if z > 0 else 0.0
        detector._judged_since_refresh += 1
        floor = max(params.min_ratio * median, median + params.min_delta)
        detector._step(value, z > params.threshold and value >= floor)
    detector._seen += len(batch)


@settings(deadline=None, max_examples=200)
@given(spike_params, latencies, chunks)
@example(  # an alarm that lasts until its level is adopted, then a second warm-up
    {"window": 10, "warmup": 10, "threshold": 3.0, "min_ratio": 1.0, "min_delta": 0.0,
     "consecutive": 1, "min_spread": 0.05, "adapt_after": 5},
    [50.0, 51.0] * 10 + [400.0] * 12 + [50.0] * 5,
    [3],
)  # fmt: skip
def test_latency_spike__fast_paths_equal_the_plain_per_point_algorithm(params, values, sizes):
    fast, plain = LatencySpike(**params), LatencySpike(**params)
    for batch in cut(values, sizes):
        fast.update(batch)
        plain_update(plain, batch)  # finite and within MAX_MAGNITUDE: update keeps them all
        assert pickle.dumps((fast.score, fast.alarm, fast.changes)) == pickle.dumps(
            (plain.score, plain.alarm, plain.changes)
        )
    assert pickle.dumps(fast.__dict__) == pickle.dumps(plain.__dict__)


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        levels | st.floats(allow_nan=False, allow_infinity=False, width=64),
        min_size=1,
        max_size=150,
    )
)
def test_median_and_mad__equal_numpys_bit_for_bit(values):
    fast, reference = median_and_mad(values), numpy_median_and_mad(values)
    assert pickle.dumps(fast) == pickle.dumps(reference)  # -0.0 and 0.0 told apart

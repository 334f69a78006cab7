"""The median and MAD of a small window, exactly as NumPy's partition gives them, in less time.

LatencySpike recomputes both every few points of every series over ~120 values:
NumPy's per-call cost (a copy, two partitions, the deviations) then exceeds the
work. Here the window is sorted once and the MAD is read off it: below the
median the deviations fall, from it on they rise, so the k-th smallest deviation
is a selection between two sorted runs (a binary search), never a second sort.
Every value is computed with the same float operations as the NumPy version, so
the results are equal bit for bit (tests/property/test_latency_spike_paths.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Collection

import numpy as np


def median_and_mad(values: Collection[float]) -> tuple[float, float]:
    """The median of finite ``values`` (not empty) and their median absolute deviation.

    Both are computed on halves (``v * 0.5``), doubled after, so that values of
    opposite sign near 1e308 cannot overflow a subtraction.
    """
    ordered = sorted(values)
    n = len(ordered)
    low, high = (n - 1) // 2, n // 2
    # Halves added, not a halved sum: exact for normal floats, and no overflow near 1e308.
    median = ordered[low] * 0.5 + ordered[high] * 0.5
    if median == 0.0 and any(math.copysign(1.0, v) < 0 for v in ordered if v == 0.0):
        # 0.0 and -0.0 compare equal: which one lands mid-window is NumPy's to say.
        return numpy_median_and_mad(values)
    half = median * 0.5
    split = bisect_left(ordered, median)  # deviations fall before it and rise from it
    mad_low = _kth_deviation(ordered, half, split, low)
    mad_high = mad_low if high == low else _kth_deviation(ordered, half, split, high)
    return median, (mad_low * 0.5 + mad_high * 0.5) * 2.0


def numpy_median_and_mad(values: Collection[float]) -> tuple[float, float]:
    """:func:`median_and_mad` with NumPy's partition (the definition the fast path matches)."""
    window = np.fromiter(values, dtype=np.float64, count=len(values))
    median = _numpy_median(window)
    return median, _numpy_median(np.abs(window * 0.5 - median * 0.5)) * 2.0


def _numpy_median(values: np.ndarray) -> float:
    n = values.size
    low, high = (n - 1) // 2, n // 2
    part = np.partition(values, [low, high])
    return float(part[low] * 0.5 + part[high] * 0.5)


def _kth_deviation(ordered: list[float], half: float, split: int, k: int) -> float:
    """The k-th smallest (from 0) of ``abs(v * 0.5 - half)`` over the sorted ``ordered``.

    Before ``split`` a deviation is ``half - v * 0.5`` (rising as v falls), from it
    on ``v * 0.5 - half`` (rising with v): the same numbers as ``abs``, as two
    sorted runs. The smallest k + 1 deviations are the first ``taken`` of the
    first run and the first k + 1 - ``taken`` of the second; ``taken`` is found by
    bisection and the k-th is the larger of the two runs' last ones taken.
    """
    below = split
    lo, hi = max(0, k + 1 - (len(ordered) - split)), min(k + 1, below)
    while lo < hi:
        taken = (lo + hi) // 2
        # The next of the first run is smaller than the last taken of the second: take it.
        if half - ordered[split - 1 - taken] * 0.5 < ordered[split + k - taken] * 0.5 - half:
            lo = taken + 1
        else:
            hi = taken
    rest = k + 1 - lo
    first = half - ordered[split - lo] * 0.5 if lo else -math.inf
    second = ordered[split + rest - 1] * 0.5 - half if rest else -math.inf
    return max(second, first)

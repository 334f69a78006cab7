"""TailLatency: a tail quantile (p99) of raw latency samples over windows, vs its own past."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from detectors.metric.base import MetricDetector
from detectors.metric.hysteresis import Hysteresis
from detectors.params import DetectorParams, at_most, larger_than

_MAD_TO_SIGMA = 1.4826  # 1.4826 * MAD estimates the standard deviation of normal data


class TailLatencyParams(DetectorParams):
    """Parameters of :class:`TailLatency`."""

    quantile: float = Field(default=0.99, gt=0, lt=1, description="The tail quantile watched.")
    window: int = Field(default=500, ge=10, description="Samples per window.")
    step: int = Field(
        default=50, ge=1, description="Samples between window values (`window`: tumbling)."
    )
    history: int = Field(default=30, ge=5, description="Window values in the baseline.")
    threshold: float = Field(default=6.0, gt=0, description="Robust z-score of a hot window.")
    min_ratio: float = Field(
        default=1.3, ge=1, description="Quantile/baseline ratio also required."
    )
    min_delta: float = Field(
        default=1.0,
        ge=0,
        description="Quantile minus baseline also required, in the samples' unit.",
    )
    consecutive: int = Field(
        default=2, ge=1, description="Hot (or normal) windows in a row to raise (or clear)."
    )
    warmup: int = Field(default=10, ge=1, description="Window values learned before any alarm.")
    min_spread: float = Field(
        default=0.05, ge=0, description="Floor of the spread, as a fraction of the baseline."
    )
    adapt_after: int | None = Field(
        default=None,
        description="Alarmed windows before their level becomes the baseline "
        "(default: five histories).",
    )

    rules = (
        at_most("step", "window"),
        at_most("warmup", "history"),
        larger_than("adapt_after", "consecutive"),
    )


class TailLatency(MetricDetector[TailLatencyParams]):
    """Flags a regression of the latency tail that the median barely shows.

    Input: raw latency samples, one per request. Every ``step`` samples, once
    ``window`` samples are in, the ``quantile`` (linear interpolation, as
    ``numpy.quantile``) of the last ``window`` samples is one *window value*:
    ``step == window`` gives tumbling windows, a smaller step sliding ones. The
    baseline is the median and MAD of the last ``history`` normal window values
    (the spread floored at ``min_spread`` times the median). A window is hot when
    its quantile's robust z-score exceeds ``threshold`` and it is at least
    ``min_ratio`` times the baseline and ``min_delta`` above it. The alarm rises
    after ``consecutive`` hot windows and clears after as many normal ones; hot
    windows stay out of the baseline until the alarm has lasted ``adapt_after``
    windows, when their level becomes the new normal. No alarm before ``warmup``
    window values. Only increases count.

    A window of several hundred samples is needed for a p99 to mean something:
    with 500 samples it is decided by the slowest five or six requests, so a
    regression that slows 3% of requests shows in nearly every window (with 200,
    the few slow requests a window happens to get would make the alarm flap). Changes are reported at the sample that
    completed the window, with the window's quantile as ``observed`` and the
    baseline quantile as ``baseline``; :attr:`score` is that of the latest window.

    Parameters: :class:`TailLatencyParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> before = rng.lognormal(np.log(40), 0.3, 20_000)
        >>> after = rng.lognormal(np.log(40), 0.3, 4_000)
        >>> slow = rng.random(4_000) < 0.03  # 3% of requests now hit a slow path
        >>> after[slow] *= 8
        >>> samples = np.concatenate([before, after])
        >>> detector = TailLatency()
        >>> for start in range(0, samples.size, 500):
        ...     for change in detector.update(samples[start : start + 500]).changes:
        ...         i = start + change.index
        ...         print(f"p99 up at {i}: {change.observed:.0f} ms vs {change.baseline:.0f} ms")
        p99 up at 20299: 222 ms vs 76 ms
        >>> print(f"median {np.median(before):.0f} ms before, {np.median(after):.0f} ms after")
        median 40 ms before, 40 ms after
    """

    Params = TailLatencyParams

    def _prepare(self) -> None:
        adapt_after = self.params.adapt_after
        self._adapt_after = adapt_after if adapt_after is not None else 5 * self.params.history

    @classmethod
    def conformance_params(cls) -> Iterator[dict[str, Any]]:
        """A one-sample stride and a window short enough for a 3-sample spike to move its p99.

        The conformance checks then see the window-level hysteresis at the same
        positions as the point detectors'.
        """
        yield {"window": 50, "step": 1, "consecutive": 3}

    def _reset_state(self) -> None:
        params = self.params
        self._samples: deque[float] = deque(maxlen=params.window)  # arrival order
        self._sorted: list[float] = []  # the same samples, sorted: a quantile is O(1)
        self._since = 0  # samples since the last window value
        self._history: deque[float] = deque(maxlen=params.history)  # normal window values
        self._recent: deque[float] = deque(maxlen=params.history)  # window values while alarmed
        self._hysteresis = Hysteresis(params.consecutive)
        self._last = math.nan
        self._baseline = math.nan

    def _update_batch(self, batch: list[float]) -> None:
        samples, ordered = self._samples, self._sorted
        window, step = self.params.window, self.params.step
        for value in batch:
            self._cursor += 1
            if len(samples) == window:
                del ordered[bisect.bisect_left(ordered, samples[0])]
            samples.append(value)
            bisect.insort(ordered, value)
            self._since += 1
            if len(samples) == window and self._since >= step:
                self._since = 0
                self._judge(self._window_quantile())

    def _window_quantile(self) -> float:
        window = self.params.window
        position = self.params.quantile * (window - 1)
        low = int(position)
        high = min(low + 1, window - 1)
        frac = position - low
        return self._sorted[low] + frac * (self._sorted[high] - self._sorted[low])

    def _judge(self, value: float) -> None:
        self._last = value
        params = self.params
        if len(self._history) < params.warmup:
            self._history.append(value)
            return
        values = sorted(self._history)
        median = _sorted_median(values)
        mad = _sorted_median(sorted(abs(v - median) for v in values)) * _MAD_TO_SIGMA
        spread = max(mad, params.min_spread * abs(median), 1e-9)
        self._baseline = median
        z = (value - median) / spread
        self._score = z / (z + params.threshold) if z > 0 else 0.0
        hot = (
            z > params.threshold
            and value >= params.min_ratio * median
            and value >= median + params.min_delta
        )
        if not hot:
            self._history.append(value)
        if self._hysteresis.step(self._alarm, hot, value, value):
            self._alarm = hot
            self._recent.clear()
            self._note_change(hot, self._hysteresis.peak if hot else value, median)
        if self._alarm:
            self._recent.append(value)
            if self._hysteresis.alarmed_for >= self._adapt_after:
                # Too long for an episode: the tail's new level is the new normal.
                self._history = deque(self._recent, maxlen=params.history)
                self._alarm = False
                self._hysteresis.reset()
                self._note_change(False, value, median, adapted=True)

    @property
    def baseline(self) -> float:
        """The baseline window quantile (median of past ones); NaN in warm-up."""
        return self._baseline

    @property
    def last(self) -> float:
        """The latest window quantile; NaN before the first full window."""
        return self._last


def _sorted_median(values: list[float]) -> float:
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2

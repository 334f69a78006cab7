"""TailLatency: a tail quantile (p99) of raw latency samples over windows, vs its own past."""

from __future__ import annotations

import bisect
import math
from collections import deque

from detectors.base import Detector, require
from detectors.metric.hysteresis import Hysteresis

_MAD_TO_SIGMA = 1.4826  # 1.4826 * MAD estimates the standard deviation of normal data


class TailLatency(Detector):
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

    Args:
        quantile: the tail quantile, in (0, 1).
        window: samples per window.
        step: samples between window values (``window``: tumbling).
        history: window values in the baseline.
        threshold: robust z-score of a hot window.
        min_ratio: quantile/baseline ratio also required.
        min_delta: quantile minus baseline also required, in the samples' unit.
        consecutive: hot (or normal) windows in a row to raise (or clear).
        warmup: window values learned before any alarm.
        min_spread: floor of the spread, as a fraction of the baseline.
        adapt_after: alarmed windows before their level becomes the baseline
            (default: five histories).

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

    def __init__(
        self,
        quantile: float = 0.99,
        window: int = 500,
        step: int = 50,
        history: int = 30,
        threshold: float = 6.0,
        min_ratio: float = 1.3,
        min_delta: float = 1.0,
        consecutive: int = 2,
        warmup: int = 10,
        min_spread: float = 0.05,
        adapt_after: int | None = None,
    ) -> None:
        super().__init__()
        require(0 < quantile < 1, f"quantile must be in (0, 1); got {quantile}.")
        require(window >= 10, f"window must be at least 10 samples; got {window}.")
        require(1 <= step <= window, f"step must be between 1 and window; got {step}.")
        require(history >= 5, f"history must be at least 5 windows; got {history}.")
        require(threshold > 0, f"threshold must be positive; got {threshold}.")
        require(min_ratio >= 1, f"min_ratio must be at least 1; got {min_ratio}.")
        require(min_delta >= 0, f"min_delta must not be negative; got {min_delta}.")
        require(consecutive >= 1, f"consecutive must be at least 1; got {consecutive}.")
        require(1 <= warmup <= history, f"warmup must be between 1 and history; got {warmup}.")
        require(min_spread >= 0, f"min_spread must not be negative; got {min_spread}.")
        require(
            adapt_after is None or adapt_after > consecutive,
            "adapt_after must be larger than consecutive.",
        )
        self.quantile = quantile
        self.window = window
        self.step = step
        self.history = history
        self.threshold = threshold
        self.min_ratio = min_ratio
        self.min_delta = min_delta
        self.consecutive = consecutive
        self.warmup = warmup
        self.min_spread = min_spread
        self.adapt_after = adapt_after
        self._adapt_after = adapt_after if adapt_after is not None else 5 * history
        self.reset()

    def _reset_state(self) -> None:
        self._samples: deque[float] = deque(maxlen=self.window)  # arrival order
        self._sorted: list[float] = []  # the same samples, sorted: a quantile is O(1)
        self._since = 0  # samples since the last window value
        self._history: deque[float] = deque(maxlen=self.history)  # normal window values
        self._recent: deque[float] = deque(maxlen=self.history)  # window values while alarmed
        self._hysteresis = Hysteresis(self.consecutive)
        self._last = math.nan
        self._baseline = math.nan

    def _update_batch(self, batch: list[float]) -> None:
        samples, ordered, window = self._samples, self._sorted, self.window
        for value in batch:
            self._cursor += 1
            if len(samples) == window:
                del ordered[bisect.bisect_left(ordered, samples[0])]
            samples.append(value)
            bisect.insort(ordered, value)
            self._since += 1
            if len(samples) == window and self._since >= self.step:
                self._since = 0
                self._judge(self._window_quantile())

    def _window_quantile(self) -> float:
        position = self.quantile * (self.window - 1)
        low = int(position)
        high = min(low + 1, self.window - 1)
        frac = position - low
        return self._sorted[low] + frac * (self._sorted[high] - self._sorted[low])

    def _judge(self, value: float) -> None:
        self._last = value
        if len(self._history) < self.warmup:
            self._history.append(value)
            return
        values = sorted(self._history)
        median = _sorted_median(values)
        mad = _sorted_median(sorted(abs(v - median) for v in values)) * _MAD_TO_SIGMA
        spread = max(mad, self.min_spread * abs(median), 1e-9)
        self._baseline = median
        z = (value - median) / spread
        self._score = z / (z + self.threshold) if z > 0 else 0.0
        hot = (
            z > self.threshold
            and value >= self.min_ratio * median
            and value >= median + self.min_delta
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
                self._history = deque(self._recent, maxlen=self.history)
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

    def _params(self) -> dict[str, object]:
        return {
            "quantile": self.quantile,
            "window": self.window,
            "step": self.step,
            "history": self.history,
            "threshold": self.threshold,
            "min_ratio": self.min_ratio,
            "min_delta": self.min_delta,
            "consecutive": self.consecutive,
            "warmup": self.warmup,
            "min_spread": self.min_spread,
            "adapt_after": self.adapt_after,
        }


def _sorted_median(values: list[float]) -> float:
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2

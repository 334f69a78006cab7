"""CountSpike: a rise of per-interval event counts (errors, restarts), judged as counts."""

from __future__ import annotations

import math

from scipy.special import betainc

from detectors.base import Detector
from detectors.hysteresis import Hysteresis
from fireline.errors import DetectorError

_PRIOR_SHAPE = 0.5  # Jeffreys prior on the Poisson rate: an all-zero history is not certainty
# Counts this far in the upper tail stay out of the baseline even below the alarm
# threshold: the first intervals of an incident must not teach it that errors are normal.
_LEARN_TAIL = 0.01


class CountSpike(Detector):
    """Flags per-interval counts well above what the series' count law predicts.

    Error counts are not Gaussian levels: they are small, skewed and often zero,
    and their spread grows with their mean. The baseline is a negative-binomial
    predictive law for the next count, learnt from exponentially decayed sums
    (memory ``window`` points) of the counts that were not spikes:

    - mean ``m``: the decayed mean count;
    - size ``r`` from two variance terms, ``1/r = 1/r_rate + 1/r_disp``: the
      uncertainty of the rate itself (Gamma-Poisson posterior with a Jeffreys
      prior, ``r_rate = sum + 0.5``; this keeps an all-zero history from making
      one error a certainty) and the series' own overdispersion
      (``r_disp = m² / (var - m)`` when the variance exceeds the mean, else none:
      a Poisson law).

    A count spikes when its upper-tail probability ``P(X >= count)`` is at most
    ``p_value`` *and* it is at least ``min_ratio`` times ``m`` and ``min_delta``
    above it (two errors more is not an incident on any law). Only increases
    count: fewer errors is good news. Non-integer counts (Prometheus
    ``increase()`` extrapolates) use the law's continuous extension.
    ``score = s / (s + s_p)`` with ``s = -log10 P`` and ``s_p = -log10 p_value``,
    so it is 0.5 at the threshold. The alarm rises after ``consecutive`` spiking
    intervals and clears after as many normal ones; spikes stay out of the
    baseline (so do counts in the upper 1% tail, which would otherwise teach it
    the start of an incident) until the alarm has lasted ``adapt_after`` points, when their level
    becomes the new normal.

    Args:
        window: memory of the decayed baseline, in points.
        p_value: upper-tail probability at or below which a count spikes.
        min_ratio: count/baseline ratio also required.
        min_delta: count minus baseline also required.
        consecutive: spiking (or normal) points in a row to raise (or clear).
        warmup: points learned before any alarm.
        adapt_after: alarmed points before their level becomes the baseline
            (default: five windows).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> counts = np.concatenate([rng.poisson(0.3, 500), rng.poisson(6, 20)])
        >>> detector = CountSpike()
        >>> for i, x in enumerate(counts):
        ...     for change in detector.update(x).changes:
        ...         print(f"errors up at {i}: {change.observed:.0f} vs {change.baseline:.2f}")
        errors up at 502: 7 vs 0.28
    """

    def __init__(
        self,
        window: int = 120,
        p_value: float = 0.01,
        min_ratio: float = 1.5,
        min_delta: float = 2.0,
        consecutive: int = 3,
        warmup: int = 30,
        adapt_after: int | None = None,
    ) -> None:
        super().__init__()
        if window < 10:
            raise DetectorError(f"window must be at least 10; got {window}.")
        if not 0 < p_value < 0.5:
            raise DetectorError(f"p_value must be in (0, 0.5); got {p_value}.")
        if min_ratio < 1:
            raise DetectorError(f"min_ratio must be at least 1; got {min_ratio}.")
        if min_delta < 0:
            raise DetectorError(f"min_delta must not be negative; got {min_delta}.")
        if consecutive < 1:
            raise DetectorError(f"consecutive must be at least 1; got {consecutive}.")
        if not 1 <= warmup <= window:
            raise DetectorError(f"warmup must be between 1 and window ({window}); got {warmup}.")
        if adapt_after is not None and adapt_after <= consecutive:
            raise DetectorError("adapt_after must be larger than consecutive.")
        self.window = window
        self.p_value = p_value
        self.min_ratio = min_ratio
        self.min_delta = min_delta
        self.consecutive = consecutive
        self.warmup = warmup
        self.adapt_after = adapt_after
        self._adapt_after = adapt_after if adapt_after is not None else 5 * window
        self._decay = 1.0 - 1.0 / window
        self._log_p = -math.log10(p_value)
        self.reset()

    def _reset_state(self) -> None:
        # Decayed weight, sum and sum of squares of the normal counts.
        self._n = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._learned = 0
        self._hysteresis = Hysteresis(self.consecutive)
        # Plain sums of the counts seen while alarmed, to adopt a lasting level.
        self._alarm_n = 0
        self._alarm_s1 = 0.0
        self._alarm_s2 = 0.0

    def _update_batch(self, batch: list[float]) -> None:
        for count in batch:
            self._cursor += 1
            if self._learned < self.warmup:
                self._score = 0.0
                self._learn(count)
                continue
            mean = self._s1 / self._n
            tail = self._upper_tail(count, mean)
            strength = 0.0 if tail >= 1.0 else -math.log10(max(tail, 1e-300))
            self._score = strength / (strength + self._log_p)
            hot = (
                tail <= self.p_value
                and count >= self.min_ratio * mean
                and count >= mean + self.min_delta
            )
            if tail >= _LEARN_TAIL:
                self._learn(count)
            if self._hysteresis.step(self._alarm, hot, count, count):
                self._alarm = hot
                self._alarm_n, self._alarm_s1, self._alarm_s2 = 0, 0.0, 0.0
                self._note_change(hot, self._hysteresis.peak if hot else count, mean)
            if self._alarm:
                self._alarm_n += 1
                self._alarm_s1 += count
                self._alarm_s2 += count * count
                if self._hysteresis.alarmed_for >= self._adapt_after:
                    self._adopt_alarmed_level(count, mean)

    def _learn(self, count: float) -> None:
        d = self._decay
        self._n = d * self._n + 1.0
        self._s1 = d * self._s1 + count
        self._s2 = d * self._s2 + count * count
        self._learned += 1

    def _upper_tail(self, count: float, mean: float) -> float:
        """``P(X >= count)`` under the negative-binomial predictive law."""
        if count <= 0:
            return 1.0
        inv_size = 1.0 / (self._s1 + _PRIOR_SHAPE)
        var = self._s2 / self._n - mean * mean
        if var > mean > 0:
            inv_size += (var - mean) / (mean * mean)
        size = 1.0 / inv_size
        # The prior's share of the mean: an all-zero history predicts ~0.5/n, not 0.
        m = max(mean, _PRIOR_SHAPE / self._n)
        # NB(size, m): P(X >= x) = I_{m/(size+m)}(x, size), the regularised beta.
        return float(betainc(count, size, m / (size + m)))

    def _adopt_alarmed_level(self, count: float, baseline: float) -> None:
        # Too long for a spike: the alarmed counts are the new normal.
        weight = min(self._alarm_n, self.window) / self._alarm_n
        self._n = self._alarm_n * weight
        self._s1 = self._alarm_s1 * weight
        self._s2 = self._alarm_s2 * weight
        self._alarm = False
        self._hysteresis.reset()
        self._note_change(False, count, baseline, adapted=True)

    @property
    def baseline(self) -> float:
        """The mean count of the baseline; NaN before the first point."""
        return self._s1 / self._n if self._n else math.nan

    def _params(self) -> dict[str, object]:
        return {
            "window": self.window,
            "p_value": self.p_value,
            "min_ratio": self.min_ratio,
            "min_delta": self.min_delta,
            "consecutive": self.consecutive,
            "warmup": self.warmup,
            "adapt_after": self.adapt_after,
        }

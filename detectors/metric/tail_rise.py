"""The shared machinery of detectors that flag a value in the upper tail of a learnt law.

:class:`~detectors.metric.count_spike.CountSpike` and
:class:`~detectors.metric.error_ratio.ErrorRatio` differ only in the law (negative
binomial counts, beta-binomial ratios); the baseline (exponentially decayed sums
of the normal values), the score, the hysteresis and the adoption of a lasting
level are this class's.
"""

from __future__ import annotations

import abc
import math

from detectors.base import Detector
from detectors.metric.hysteresis import Hysteresis
from fireline.errors import DetectorError

# Values this far in the upper tail stay out of the baseline even below the alarm
# threshold: the first intervals of an incident must not teach it that errors are normal.
_LEARN_TAIL = 0.01


class TailRiseDetector(Detector):
    """A rise judged by the upper-tail probability ``P(X >= value)`` of a learnt law.

    A value spikes when its tail is at most ``p_value`` *and* it is at least
    ``min_ratio`` times the baseline and ``min_delta`` above it. Only increases
    count. ``score = s / (s + s_p)`` with ``s = -log10 P`` and ``s_p = -log10
    p_value``, so it is 0.5 at the threshold. The alarm rises after
    ``consecutive`` spiking points and clears after as many normal ones; spikes
    (and values in the upper 1% tail) stay out of the baseline until the alarm has
    lasted ``adapt_after`` points, when their level becomes the new normal.
    """

    def __init__(
        self,
        window: int,
        p_value: float,
        min_ratio: float,
        min_delta: float,
        consecutive: int,
        warmup: int,
        adapt_after: int | None,
    ) -> None:
        super().__init__()
        if window < 10:
            raise DetectorError(f"window must be at least 10; got {window}.")
        if not 0 < p_value < 0.5:
            raise DetectorError(f"p_value must be in (0, 0.5); got {p_value}.")
        if min_ratio < 1:
            raise DetectorError(f"min_ratio must be at least 1; got {min_ratio}.")
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

    @abc.abstractmethod
    def _upper_tail(self, value: float, baseline: float) -> float:
        """``P(X >= value)`` under the learnt law, given the baseline mean."""

    def _clip(self, value: float) -> float:
        """The value as the law sees it (subclasses may bound it)."""
        return value

    def _reset_state(self) -> None:
        # Decayed weight, sum and sum of squares of the normal values.
        self._n = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._learned = 0
        self._hysteresis = Hysteresis(self.consecutive)
        # Plain sums of the values seen while alarmed, to adopt a lasting level.
        self._alarm_n = 0
        self._alarm_s1 = 0.0
        self._alarm_s2 = 0.0

    def _update_batch(self, batch: list[float]) -> None:
        for raw in batch:
            self._cursor += 1
            value = self._clip(raw)
            if self._learned < self.warmup:
                self._score = 0.0
                self._learn(value)
                continue
            mean = self._s1 / self._n
            tail = self._upper_tail(value, mean)
            strength = 0.0 if tail >= 1.0 else -math.log10(max(tail, 1e-300))
            self._score = strength / (strength + self._log_p)
            hot = (
                tail <= self.p_value
                and value >= self.min_ratio * mean
                and value >= mean + self.min_delta
            )
            if tail >= _LEARN_TAIL:
                self._learn(value)
            if self._hysteresis.step(self._alarm, hot, value, value):
                self._alarm = hot
                self._alarm_n, self._alarm_s1, self._alarm_s2 = 0, 0.0, 0.0
                self._note_change(hot, self._hysteresis.peak if hot else value, mean)
            if self._alarm:
                self._alarm_n += 1
                self._alarm_s1 += value
                self._alarm_s2 += value * value
                if self._hysteresis.alarmed_for >= self._adapt_after:
                    self._adopt_alarmed_level(value, mean)

    def _learn(self, value: float) -> None:
        d = self._decay
        self._n = d * self._n + 1.0
        self._s1 = d * self._s1 + value
        self._s2 = d * self._s2 + value * value
        self._learned += 1

    def _adopt_alarmed_level(self, value: float, baseline: float) -> None:
        # Too long for a spike: the alarmed values are the new normal.
        weight = min(self._alarm_n, self.window) / self._alarm_n
        self._n = self._alarm_n * weight
        self._s1 = self._alarm_s1 * weight
        self._s2 = self._alarm_s2 * weight
        self._alarm = False
        self._hysteresis.reset()
        self._note_change(False, value, baseline, adapted=True)

    @property
    def baseline(self) -> float:
        """The baseline mean; NaN before the first point."""
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

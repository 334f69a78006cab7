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
from typing import TypeVar

from pydantic import Field

from detectors.metric.base import MetricDetector
from detectors.metric.hysteresis import Hysteresis
from detectors.params import DetectorParams, at_most, larger_than

# Values this far in the upper tail stay out of the baseline even below the alarm
# threshold: the first intervals of an incident must not teach it that errors are normal.
_LEARN_TAIL = 0.01


class TailRiseParams(DetectorParams):
    """Parameters shared by the detectors of a rise in the upper tail of a learnt law."""

    window: int = Field(
        default=120, ge=10, description="Memory of the decayed baseline, in points."
    )
    p_value: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Upper-tail probability at or below which a value spikes.",
    )
    min_ratio: float = Field(default=1.5, ge=1, description="Value/baseline ratio also required.")
    min_delta: float = Field(default=2.0, ge=0, description="Value minus baseline also required.")
    consecutive: int = Field(
        default=3, ge=1, description="Spiking (or normal) points in a row to raise (or clear)."
    )
    warmup: int = Field(default=30, ge=1, description="Points learned before any alarm.")
    adapt_after: int | None = Field(
        default=None,
        description="Alarmed points before their level becomes the baseline "
        "(default: five windows).",
    )

    rules = (at_most("warmup", "window"), larger_than("adapt_after", "consecutive"))


TP = TypeVar("TP", bound=TailRiseParams)


class TailRiseDetector(MetricDetector[TP]):
    """A rise judged by the upper-tail probability ``P(X >= value)`` of a learnt law.

    A value spikes when its tail is at most ``p_value`` *and* it is at least
    ``min_ratio`` times the baseline and ``min_delta`` above it. Only increases
    count. ``score = s / (s + s_p)`` with ``s = -log10 P`` and ``s_p = -log10
    p_value``, so it is 0.5 at the threshold. The alarm rises after
    ``consecutive`` spiking points and clears after as many normal ones; spikes
    (and values in the upper 1% tail) stay out of the baseline until the alarm has
    lasted ``adapt_after`` points, when their level becomes the new normal.
    """

    def _prepare(self) -> None:
        window, adapt_after = self.params.window, self.params.adapt_after
        self._adapt_after = adapt_after if adapt_after is not None else 5 * window
        self._decay = 1.0 - 1.0 / window
        self._log_p = -math.log10(self.params.p_value)

    @abc.abstractmethod
    def _upper_tail(self, value: float, baseline: float) -> float:
        """``P(X >= value)`` under the learnt law, given the baseline mean."""

    def _clip(self, value: float) -> float:
        """The value as the law sees it (subclasses may bound it)."""
        return value

    def _is_evidence(self, value: float, baseline: float) -> bool:
        """Whether a value in the far upper tail rests on enough events to be judged.

        Subclasses whose values stand for few events say when they do not: such a
        value then neither spikes nor stays out of the baseline.
        """
        return True

    def _reset_state(self) -> None:
        # Decayed weight, sum and sum of squares of the normal values.
        self._n = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._learned = 0
        self._hysteresis = Hysteresis(self.params.consecutive)
        # Plain sums of the values seen while alarmed, to adopt a lasting level.
        self._alarm_n = 0
        self._alarm_s1 = 0.0
        self._alarm_s2 = 0.0

    def _update_batch(self, batch: list[float]) -> None:
        params = self.params
        warmup, p_value, min_ratio, min_delta = (
            params.warmup,
            params.p_value,
            params.min_ratio,
            params.min_delta,
        )
        for raw in batch:
            self._cursor += 1
            value = self._clip(raw)
            if self._learned < warmup:
                self._score = 0.0
                self._learn(value)
                continue
            mean = self._s1 / self._n
            tail = self._upper_tail(value, mean)
            strength = 0.0 if tail >= 1.0 else -math.log10(max(tail, 1e-300))
            self._score = strength / (strength + self._log_p)
            hot = tail <= p_value and value >= min_ratio * mean and value >= mean + min_delta
            if tail < _LEARN_TAIL and not self._is_evidence(value, mean):
                hot = False  # too few events to tell a rise from the law's own tail
                tail = _LEARN_TAIL
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
        weight = min(self._alarm_n, self.params.window) / self._alarm_n
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

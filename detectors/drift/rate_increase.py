"""RateIncrease: a rise in the rate of 0/1 outcomes (errors, nulls, type changes)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from detectors.distributions import betabinom_isf
from detectors.drift.base import SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams


class RateIncrease(WindowDriftDetector[WindowDriftParams]):
    """Flags a rate of ones (errors, missing values, ...) above the reference rate.

    Values are outcomes: 1 (an error, a null) or 0; anything above 0.5 counts as 1.
    With ``k`` ones in the reference of ``m``, the count in a window of ``n`` has,
    under no change, the beta-binomial predictive distribution
    ``BetaBinomial(n, k + 1, m - k + 1)``, which also accounts for the
    uncertainty of the reference rate (a reference with no errors does not make
    one error an alarm). The threshold is its ``1 - alpha`` quantile; the
    statistic is the window's count above what the reference rate predicts, so
    the score is near 0 on a stationary stream. A sliding-window rate test in the
    spirit of ADWIN/DDM, with a threshold calibrated to the false-alarm budget.

    Parameters: :class:`~detectors.drift.window.WindowDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> errors = np.concatenate([rng.random(3000) < 0.05, rng.random(1000) < 0.15])
        >>> detector = RateIncrease(window=300)
        >>> for start in range(0, errors.size, 50):
        ...     for change in detector.update(errors[start : start + 50]).changes:
        ...         print(f"error rate up at {start + change.index}")
        error rate up at 3599
    """

    input_kind: ClassVar[str] = "binary"
    Params = WindowDriftParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._expected = 0.0
        self._reference_rate = 0.0

    def _encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return (values > 0.5).astype(np.float64)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        ones = int(np.count_nonzero(reference > 0.5))
        m = reference.size
        self._reference_rate = ones / m
        window = self.params.window
        self._expected = window * (ones + 1) / (m + 2)
        alpha = per_check_alpha(self.params.false_alarm_rate, self.params.step)
        limit = _beta_binomial_isf(alpha, window, ones + 1, m - ones + 1)
        return max(limit + 1 - self._expected, 1.0)

    def _compute(self) -> float:
        return max(float(self._ring.sum()) - self._expected, 0.0)

    @classmethod
    def _encode_many(
        cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        return (chunk > 0.5).astype(np.float64)

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        sums = cls._ring_sums(detectors)
        return [max(float(s) - d._expected, 0.0) for d, s in zip(detectors, sums, strict=True)]

    @property
    def reference_rate(self) -> float:
        """The rate of ones in the reference (0 before it is fitted)."""
        return self._reference_rate

    @property
    def recent_rate(self) -> float:
        """The rate of ones in the recent window."""
        filled = self.recent()
        return float(filled.mean()) if filled.size else 0.0


@functools.lru_cache(maxsize=256)
def _beta_binomial_isf(alpha: float, n: int, a: int, b: int) -> float:
    """``betabinom_isf``, remembered: a monitor fits two rates per column, mostly alike."""
    return betabinom_isf(alpha, n, a, b)

"""OutOfRange: values outside the reference's range, more often than chance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from detectors.base import FloatArray
from detectors.distributions import binom_isf
from detectors.drift.base import SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams


class OutOfRange(WindowDriftDetector[WindowDriftParams]):
    """Flags a numeric feature whose values leave the range seen in the reference.

    A new value of an exchangeable stream falls outside the minimum..maximum of
    ``m`` reference values with probability ``2 / (m + 1)`` (at most, with ties).
    The count of such values in the window is checked against the binomial
    ``1 - alpha`` quantile; the statistic is the count above its expectation.

    Parameters: :class:`~detectors.drift.window.WindowDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> ages = np.concatenate([rng.uniform(18, 90, 3000), rng.uniform(18, 120, 1000)])
        >>> detector = OutOfRange()
        >>> for start in range(0, ages.size, 50):
        ...     for change in detector.update(ages[start : start + 50]).changes:
        ...         print(f"out of range at {start + change.index}")
        out of range at 3199
    """

    Params = WindowDriftParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._low = 0.0
        self._high = 0.0
        self._expected = 0.0

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        self._low, self._high = float(reference.min()), float(reference.max())
        p = 2.0 / (reference.size + 1)
        window = self.params.window
        self._expected = window * p
        alpha = per_check_alpha(self.params.false_alarm_rate, self.params.step)
        return float(binom_isf(alpha, window, p)) + 1 - self._expected

    def _encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return ((values < self._low) | (values > self._high)).astype(np.float64)

    def _compute(self) -> float:
        return max(float(self._ring.sum()) - self._expected, 0.0)

    @classmethod
    def _fixed_many(cls, detectors: Sequence[Self]) -> tuple[FloatArray, FloatArray]:
        # The reference ranges as columns: (low, high).
        return np.array([[d._low] for d in detectors]), np.array([[d._high] for d in detectors])

    @classmethod
    def _encode_many(
        cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        low, high = fixed
        return ((chunk < low) | (chunk > high)).astype(np.float64)

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        sums = cls._ring_sums(detectors)
        return [max(float(s) - d._expected, 0.0) for d, s in zip(detectors, sums, strict=True)]

    @property
    def bounds(self) -> tuple[float, float]:
        """The reference's minimum and maximum."""
        return self._low, self._high

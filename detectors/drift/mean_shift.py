"""MeanShift: a two-sided CUSUM on values standardised by the reference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.base import FloatArray
from detectors.drift.base import DriftDetector, DriftParams


class MeanShiftParams(DriftParams):
    """Parameters of :class:`MeanShift`."""

    consecutive: int = Field(
        default=1,
        ge=1,
        description="Checks in a row at or above the threshold to raise (the CUSUM already "
        "accumulates evidence).",
    )
    shift: float = Field(
        default=0.5,
        ge=0.05,
        le=5,
        description="The smallest shift worth detecting, in reference standard deviations.",
    )
    clip: float = Field(
        default=3.0, ge=1, description="Standardised values are clipped to [-clip, clip]."
    )


class MeanShift(DriftDetector[MeanShiftParams]):
    """Flags a lasting shift of a numeric feature's mean, fast.

    Values are standardised with the reference's mean and standard deviation,
    clipped at ``clip`` (so one wild value adds a bounded amount) and
    re-standardised with the clipped reference's own mean and spread, so a
    stationary stream feeds the CUSUMs increments of mean 0 and variance 1. The
    upward and downward CUSUMs (allowance ``shift / 2``) are checked every
    ``step`` values; the statistic is the largest CUSUM value since the last
    check. The threshold ``h`` gives an in-control average run length of
    ``2 / false_alarm_rate`` values per side (Siegmund's approximation). After a
    check the CUSUMs are capped at ``2 h``, so the alarm clears within about
    ``2 h / shift`` values once the mean is back.

    The fastest of the numeric detectors for the shift it is tuned to (about
    ``2 h / shift`` values: ~200 for half a standard deviation); it does not see
    changes of spread or shape (KS, PSI and Wasserstein do).

    Parameters: :class:`MeanShiftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(0.5, 1, 1000)])
        >>> detector = MeanShift()
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"shift at {start + change.index}, CUSUM={change.observed:.0f}")
        shift at 3099, CUSUM=40
    """

    Params = MeanShiftParams

    def _reset_state(self) -> None:
        self._center = 0.0
        self._scale = 1.0
        self._z_center = 0.0
        self._z_scale = 1.0
        self._up = 0.0
        self._down = 0.0
        self._peak = 0.0

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        self._center = float(reference.mean())
        std = float(reference.std())
        self._scale = std if std > 0 else max(abs(self._center) * 1e-6, 1e-12)
        clip = self.params.clip
        z = np.clip((reference - self._center) / self._scale, -clip, clip)
        self._z_center = float(z.mean())
        z_std = float(z.std())
        self._z_scale = z_std if z_std > 0 else 1.0
        return _cusum_threshold(self.params.shift / 2, 2.0 / self.params.false_alarm_rate)

    def _absorb(self, values: npt.NDArray[Any]) -> None:
        clip = self.params.clip
        z = np.clip((values - self._center) / self._scale, -clip, clip)
        z = (z - self._z_center) / self._z_scale
        allowance = self.params.shift / 2
        # Both CUSUMs in one pass of NumPy calls: rows are upward, downward.
        increments = np.empty((2, z.size))
        np.subtract(z, allowance, out=increments[0])
        np.subtract(-z, allowance, out=increments[1])
        last, peak = _lindley(np.array([[self._up], [self._down]]), increments)
        self._up, self._down = float(last[0]), float(last[1])
        self._peak = max(self._peak, float(peak.max()))

    @classmethod
    def _fixed_many(cls, detectors: Sequence[Self]) -> _Stacked:
        def column(values: list[float]) -> FloatArray:
            return np.array(values)[:, None]

        return _Stacked(
            column([d._center for d in detectors]),
            column([d._scale for d in detectors]),
            column([d.params.clip for d in detectors]),
            column([d._z_center for d in detectors]),
            column([d._z_scale for d in detectors]),
            column([d.params.shift / 2 for d in detectors]),
        )

    @classmethod
    def _absorb_many(cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any) -> None:
        # _absorb of every row at once: rows g are upward, G + g downward CUSUMs.
        k: _Stacked = fixed
        z = np.clip((chunk - k.center) / k.scale, -k.clip, k.clip)
        z = (z - k.z_center) / k.z_scale
        g = len(detectors)
        increments = np.empty((2 * g, z.shape[1]))
        np.subtract(z, k.allowance, out=increments[:g])
        np.subtract(-z, k.allowance, out=increments[g:])
        starts = np.array([[d._up] for d in detectors] + [[d._down] for d in detectors])
        last, peak = _lindley(starts, increments)
        for i, d in enumerate(detectors):
            d._up, d._down = float(last[i]), float(last[g + i])
            d._peak = max(d._peak, float(max(peak[i], peak[g + i])))

    def _compute(self) -> float:
        peak, self._peak = self._peak, 0.0
        cap = 2 * self._threshold
        self._up, self._down = min(self._up, cap), min(self._down, cap)
        return peak


class _Stacked(NamedTuple):
    """The standardisation of many MeanShift detectors, one row each (see _absorb_many)."""

    center: FloatArray
    scale: FloatArray
    clip: FloatArray
    z_center: FloatArray
    z_scale: FloatArray
    allowance: FloatArray


def _lindley(
    start: npt.NDArray[np.float64], increments: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``S_t = max(0, S_t-1 + x_t)`` along each row at once: the last and the largest S_t.

    ``S_t = C_t - min(0, min_j<=t C_j)`` with ``C`` the running sum from ``start``
    (a column: one start per row).
    """
    running = start + np.cumsum(increments, axis=1)
    path = running - np.minimum(np.minimum.accumulate(running, axis=1), 0.0)
    return path[:, -1], path.max(axis=1)


def _cusum_threshold(allowance: float, arl0: float) -> float:
    """``h`` with Siegmund's ARL0 ~ (exp(2kb) - 2kb - 1) / (2k^2), b = h + 1.166."""

    def arl(h: float) -> float:
        b = 2 * allowance * (h + 1.166)
        return (math.exp(b) - b - 1) / (2 * allowance**2)

    low, high = 0.0, 1.0
    while arl(high) < arl0:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if arl(mid) < arl0 else (low, mid)
    return high

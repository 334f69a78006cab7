"""WassersteinDrift: the earth mover's distance to a reference quantile sketch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.distributions import student_t_isf
from detectors.drift.base import SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams

_TRIM = 0.02


class WassersteinDriftParams(WindowDriftParams):
    """Parameters of :class:`WassersteinDrift`."""

    sketch_size: int = Field(default=128, ge=16, description="Quantiles kept of the reference.")
    min_shift: float = Field(
        default=0.1, gt=0, description="The smallest threshold, in reference standard deviations."
    )
    draws: int = Field(default=64, ge=16, description="Resampled windows for the calibration.")
    seed: int = Field(default=0, description="Seed of the calibration's resampling.")


class WassersteinDrift(WindowDriftDetector[WassersteinDriftParams]):
    """Flags a numeric feature whose values moved, by how far they moved.

    ``W1 = mean |Q_recent(u) - Q_ref(u)|`` over ``sketch_size`` quantile levels,
    over the central 96% (levels 0.02..0.98), divided by the reference's
    standard deviation: "how many sigmas the mass moved". W1 has no
    distribution-free null, so the threshold is calibrated on the reference
    itself when it is fitted: ``draws`` windows resampled from it (seeded by
    ``seed``) give the mean and spread of W1 under no drift, and the threshold is
    the mean plus ``t(alpha, draws - 1)`` spreads (W1 is a Lipschitz function of the
    sample, so it concentrates like a Gaussian), but never below ``min_shift``:
    resampling a discrete feature often gives W1 = 0 exactly, and a spread of 0
    says nothing about the tail.

    Parameters: :class:`WassersteinDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(0.5, 1, 1000)])
        >>> detector = WassersteinDrift()
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"drift at {start + change.index}, W1={change.observed:.2f} sigma")
        drift at 3299, W1=0.38 sigma
    """

    Params = WassersteinDriftParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sketch = np.zeros(0)
        self._scale = 1.0
        self._levels = np.zeros(0, dtype=np.int64)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        # The central 96% only: the extreme quantiles of a window of heavy-tailed
        # values swing too much to calibrate, and a shift moves the middle too.
        params = self.params
        size, window, draws = params.sketch_size, params.window, params.draws
        probs = _TRIM + (1 - 2 * _TRIM) * (np.arange(size) + 0.5) / size
        self._sketch = np.quantile(reference, probs)
        std = float(reference.std())
        self._scale = std if std > 0 else max(abs(float(reference.mean())) * 1e-6, 1e-12)
        self._levels = (probs * window).astype(np.int64)
        rng = np.random.default_rng(params.seed)
        # The draws one by one (the same random stream as ever), sorted and compared
        # with the sketch together; each row's mean taken alone, as _distance takes it
        # (a mean along an axis may differ in the last bit).
        resampled = np.sort([rng.choice(reference, window, replace=True) for _ in range(draws)])
        gaps = np.abs(resampled[:, self._levels] - self._sketch)
        null = np.array([row.mean() for row in gaps]) / self._scale
        # Resampling from the reference misses the reference's own noise: widen by
        # sqrt(1 + n/m), the ratio of two-sample to one-sample spread.
        widen = math.sqrt(1.0 + window / reference.size)
        # Student's t, not the normal: the spread is itself estimated from `draws`.
        alpha = per_check_alpha(params.false_alarm_rate, params.step)
        z = float(student_t_isf(alpha, draws - 1)) * math.sqrt(1 + 1 / draws)
        return max(float(null.mean() + z * widen * null.std(ddof=1)), params.min_shift)

    def _distance(self, values: npt.NDArray[Any]) -> float:
        return self._compute_sorted(np.sort(values))

    def _compute(self) -> float:
        return self._distance(self._ring)

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        ordered = cls._sorted_rings(detectors, windows)
        # The levels follow from the parameters: one instance (as in lockstep), one set.
        params, levels = detectors[0].params, detectors[0]._levels
        if any(d.params is not params for d in detectors):
            return [d._compute_sorted(row) for d, row in zip(detectors, ordered, strict=True)]
        sketch = np.array([d._sketch for d in detectors])
        scale = np.array([d._scale for d in detectors])
        distance = np.abs(ordered[:, levels] - sketch).mean(axis=1) / scale
        return [float(x) for x in distance]

    def _compute_sorted(self, ordered: npt.NDArray[np.float64]) -> float:
        return float(np.abs(ordered[self._levels] - self._sketch).mean() / self._scale)

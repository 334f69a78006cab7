"""WassersteinDrift: the earth mover's distance to a reference quantile sketch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import t as student_t

from detectors.drift.base import WindowDriftDetector
from detectors.drift.budget import per_check_alpha
from fireline.errors import DetectorError

_TRIM = 0.02


class WassersteinDrift(WindowDriftDetector):
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

    Args:
        sketch_size: quantiles kept of the reference.
        min_shift: the smallest threshold, in reference standard deviations.
        draws: resampled windows for the calibration.
        seed: seed of the calibration's resampling.
        window: recent values compared with the reference.
        **kwargs: see :class:`detectors.drift.base.DriftDetector`.

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

    def __init__(
        self,
        *,
        sketch_size: int = 128,
        min_shift: float = 0.1,
        draws: int = 64,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        if sketch_size < 16:
            raise DetectorError(f"sketch_size must be at least 16; got {sketch_size}.")
        if not min_shift > 0:
            raise DetectorError(f"min_shift must be positive; got {min_shift}.")
        if draws < 16:
            raise DetectorError(f"draws must be at least 16; got {draws}.")
        self.sketch_size = sketch_size
        self.min_shift = min_shift
        self.draws = draws
        self.seed = seed
        super().__init__(**kwargs)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sketch = np.zeros(0)
        self._scale = 1.0
        self._levels = np.zeros(0, dtype=np.int64)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        # The central 96% only: the extreme quantiles of a window of heavy-tailed
        # values swing too much to calibrate, and a shift moves the middle too.
        probs = _TRIM + (1 - 2 * _TRIM) * (np.arange(self.sketch_size) + 0.5) / self.sketch_size
        self._sketch = np.quantile(reference, probs)
        std = float(reference.std())
        self._scale = std if std > 0 else max(abs(float(reference.mean())) * 1e-6, 1e-12)
        self._levels = (probs * self.window).astype(np.int64)
        rng = np.random.default_rng(self.seed)
        null = np.array(
            [
                self._distance(rng.choice(reference, self.window, replace=True))
                for _ in range(self.draws)
            ]
        )
        # Resampling from the reference misses the reference's own noise: widen by
        # sqrt(1 + n/m), the ratio of two-sample to one-sample spread.
        widen = math.sqrt(1.0 + self.window / reference.size)
        # Student's t, not the normal: the spread is itself estimated from `draws`.
        alpha = per_check_alpha(self.false_alarm_rate, self.step)
        z = float(student_t.isf(alpha, self.draws - 1)) * math.sqrt(1 + 1 / self.draws)
        return max(float(null.mean() + z * widen * null.std(ddof=1)), self.min_shift)

    def _distance(self, values: npt.NDArray[Any]) -> float:
        return self._compute_sorted(np.sort(values))

    def _compute(self) -> float:
        return self._distance(self._ring)

    def _compute_sorted(self, ordered: npt.NDArray[np.float64]) -> float:
        return float(np.abs(ordered[self._levels] - self._sketch).mean() / self._scale)

    def _params(self) -> dict[str, object]:
        return {
            "sketch_size": self.sketch_size,
            "min_shift": self.min_shift,
            "draws": self.draws,
            "seed": self.seed,
            **super()._params(),
        }

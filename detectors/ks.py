"""KSDrift: the two-sample Kolmogorov-Smirnov distance to a reference quantile sketch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.budget import kolmogorov_c, per_check_alpha
from detectors.drift_base import WindowDriftDetector
from fireline.errors import DetectorError


class KSDrift(WindowDriftDetector):
    """Flags a numeric feature whose recent distribution moved away from the reference.

    The reference is kept as ``sketch_size`` quantiles (bounded memory whatever
    its size); every ``step`` values the KS distance ``D`` between the last
    ``window`` values and the sketch is checked against
    ``c(alpha) * sqrt(1/window + 1/reference)`` plus the sketch's resolution
    ``1/sketch_size``, where ``alpha`` is the per-check share of
    ``false_alarm_rate``. Sensitive to any change of shape: location, spread, skew.

    Args:
        sketch_size: quantiles kept of the reference.
        window: recent values compared with the reference.
        **kwargs: see :class:`detectors.drift_base.DriftDetector`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(0.5, 1, 1000)])
        >>> detector = KSDrift()
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"drift at {start + change.index}, D={change.observed:.2f}")
        drift at 3399, D=0.25
    """

    def __init__(self, *, sketch_size: int = 256, **kwargs: Any) -> None:
        if sketch_size < 16:
            raise DetectorError(f"sketch_size must be at least 16; got {sketch_size}.")
        self.sketch_size = sketch_size
        super().__init__(**kwargs)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sketch = np.zeros(0)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        probs = (np.arange(self.sketch_size) + 0.5) / self.sketch_size
        self._sketch = np.quantile(reference, probs)
        alpha = per_check_alpha(self.false_alarm_rate, self.step)
        n_inv = 1.0 / self.window + 1.0 / reference.size
        return kolmogorov_c(alpha) * math.sqrt(n_inv) + 1.0 / self.sketch_size

    def _compute(self) -> float:
        recent = np.sort(self._ring)
        # Both ECDFs are step functions: the sup of their difference is reached
        # at one of the points of either, evaluated right-continuously.
        points = np.concatenate([self._sketch, recent])
        f_recent = np.searchsorted(recent, points, side="right") / recent.size
        f_ref = np.searchsorted(self._sketch, points, side="right") / self._sketch.size
        return float(np.abs(f_recent - f_ref).max())

    def _params(self) -> dict[str, object]:
        return {"sketch_size": self.sketch_size, **super()._params()}

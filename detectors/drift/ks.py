"""KSDrift: the two-sample Kolmogorov-Smirnov distance to a reference quantile sketch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.drift.base import SortedWindows
from detectors.drift.budget import kolmogorov_c, per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams


class KSDriftParams(WindowDriftParams):
    """Parameters of :class:`KSDrift`."""

    sketch_size: int = Field(default=256, ge=16, description="Quantiles kept of the reference.")


class KSDrift(WindowDriftDetector[KSDriftParams]):
    """Flags a numeric feature whose recent distribution moved away from the reference.

    The reference is kept as ``sketch_size`` quantiles (bounded memory whatever
    its size); every ``step`` values the KS distance ``D`` between the last
    ``window`` values and the sketch is checked against
    ``c(alpha) * sqrt(1/window + 1/reference)`` plus the sketch's resolution
    ``1/sketch_size``, where ``alpha`` is the per-check share of
    ``false_alarm_rate``. Sensitive to any change of shape: location, spread, skew.

    Parameters: :class:`KSDriftParams`.

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

    Params = KSDriftParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sketch = np.zeros(0)
        self._sketch_cdf = np.zeros(0)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        params = self.params
        probs = (np.arange(params.sketch_size) + 0.5) / params.sketch_size
        self._sketch = np.quantile(reference, probs)
        # The sketch's own ECDF at its points (ties: after the last copy), fixed from here on.
        self._sketch_cdf = np.searchsorted(self._sketch, self._sketch, side="right") / probs.size
        alpha = per_check_alpha(params.false_alarm_rate, params.step)
        n_inv = 1.0 / params.window + 1.0 / reference.size
        return kolmogorov_c(alpha) * math.sqrt(n_inv) + 1.0 / params.sketch_size

    def _compute(self) -> float:
        return self._compute_sorted(np.sort(self._ring))

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        # One stable sort of each (sorted) window merged with its sketch gives both
        # ECDFs at every point: at the last copy of a value, the counts of window
        # and sketch values up to it are those _compute_sorted's binary searches find.
        ordered = cls._sorted_rings(detectors, windows)
        n = ordered.shape[1]
        m = detectors[0]._sketch.size  # one parameter instance: one sketch size
        merged = np.concatenate([ordered, np.array([d._sketch for d in detectors])], axis=1)
        order = np.argsort(merged, axis=1, kind="stable")  # two sorted runs: a merge
        values = np.take_along_axis(merged, order, axis=1)
        in_window = np.cumsum(order < n, axis=1)
        in_sketch = np.arange(1, n + m + 1) - in_window
        gap = np.abs(in_window / n - in_sketch / m)
        gap[:, :-1][values[:, 1:] == values[:, :-1]] = 0.0  # only the last copy of a value counts
        return [float(x) for x in gap.max(axis=1)]

    def _compute_sorted(self, recent: npt.NDArray[np.float64]) -> float:
        # Both ECDFs are step functions: the sup of their difference is reached
        # at one of the points of either, evaluated right-continuously. At the
        # sketch's points the sketch's ECDF is fixed; at the window's (sorted)
        # points, the window's ECDF is the rank of the last copy of each value.
        n = recent.size
        at_sketch = np.searchsorted(recent, self._sketch, side="right") / n - self._sketch_cdf
        f_ref = np.searchsorted(self._sketch, recent, side="right") / self._sketch.size
        last = recent[1:] != recent[:-1]
        if last.all():
            f_recent = np.arange(1, n + 1) / n
        else:
            ends = np.flatnonzero(np.append(last, True))
            f_recent, f_ref = (ends + 1) / n, f_ref[ends]
        return float(max(np.abs(at_sketch).max(), np.abs(f_recent - f_ref).max()))

"""PSIDrift: the population stability index over quantile bins of the reference."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.distributions import chi2_isf
from detectors.drift.base import SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams


class PSIDriftParams(WindowDriftParams):
    """Parameters of :class:`PSIDrift`."""

    bins: int = Field(
        default=10, ge=2, le=100, description="Quantile bins of the reference (before merging)."
    )


class PSIDrift(WindowDriftDetector[PSIDriftParams]):
    """Flags a numeric feature whose mass moved between the reference's quantile bins.

    The bins are cut at the reference's ``bins``-quantiles (duplicates merged,
    so a discrete feature gets one bin per value), plus one bin below its
    minimum and one above its maximum. ``PSI = sum((p - q) * ln(p / q))`` over
    the bins, with half a reference count added to each (so an empty bin is finite). Under
    no drift ``PSI * n*m/(n+m)`` is about chi-square with ``bins - 1`` degrees of
    freedom, which sets the threshold for the per-check share of
    ``false_alarm_rate`` (not the folklore 0.1/0.25, which ignores sample sizes).

    Parameters: :class:`PSIDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> stream = np.concatenate([rng.normal(0, 1, 3000), rng.normal(0, 2, 1000)])
        >>> detector = PSIDrift()
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"drift at {start + change.index}, PSI={change.observed:.2f}")
        drift at 3199, PSI=0.26
    """

    Params = PSIDriftParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._edges = np.zeros(0)
        self._ref_p = np.zeros(0)
        self._floor = 0.0

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        bins = self.params.bins
        inner = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
        # Bin 0 is below the minimum, the last bin above the maximum: values the
        # reference never had are their own evidence.
        edges = np.unique(np.concatenate([[reference.min()], inner, [reference.max()]]))
        if edges.size == 1:  # a constant reference still needs a bin of its own
            edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
        self._edges = edges
        counts = self._counts(reference)
        self._floor = 0.5 / reference.size
        self._ref_p = self._smooth(counts)
        dof = max(int(np.count_nonzero(counts)) - 1, 1) + 2  # + the two outer bins
        alpha = per_check_alpha(self.params.false_alarm_rate, self.params.step)
        n_eff_inv = 1.0 / self.params.window + 1.0 / reference.size
        return float(chi2_isf(alpha, dof)) * n_eff_inv

    def _counts(self, values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        # [e_i-1, e_i) bins, the maximum in the last inner one; below/above: outer bins
        index = np.searchsorted(self._edges, values, side="right")
        index[values == self._edges[-1]] = self._edges.size - 1
        counts = np.bincount(index, minlength=self._edges.size + 1)
        return counts.astype(np.float64)

    def _smooth(self, counts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # The same floor for both sides (half a reference count), so equal
        # frequencies give exactly 0 whatever the two sample sizes.
        smoothed = counts / counts.sum() + self._floor
        return smoothed / smoothed.sum()

    def _compute(self) -> float:
        return self._compute_sorted(np.sort(self._ring))

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        # _compute_sorted per row, with one binary search for all rows' edges, for
        # rows with as many bins as the first.
        ordered = cls._sorted_rings(detectors, windows)
        size = detectors[0]._edges.size
        if any(d._edges.size != size for d in detectors):
            return [d._compute_sorted(row) for d, row in zip(detectors, ordered, strict=True)]
        g, n = ordered.shape
        edges = np.array([d._edges for d in detectors])
        keyed = _keyed(ordered).ravel()
        offsets = np.arange(g)[:, None] * n
        bounds = np.empty((g, size + 2), dtype=np.int64)
        bounds[:, 0] = 0
        inner = np.searchsorted(keyed, _keyed(edges[:, :-1]).ravel(), side="left")
        bounds[:, 1:-2] = inner.reshape(g, size - 1) - offsets
        last = np.searchsorted(keyed, _keyed(edges[:, -1:]).ravel(), side="right")
        bounds[:, -2] = last - offsets[:, 0]
        bounds[:, -1] = n
        counts = np.diff(bounds, axis=1).astype(np.float64)
        floor = np.array([[d._floor] for d in detectors])
        ref_p = np.array([d._ref_p for d in detectors])
        # _smooth and the sum, row by row (sums along a row add as a 1-D sum does)
        smoothed = counts / counts.sum(axis=1, keepdims=True) + floor
        p = smoothed / smoothed.sum(axis=1, keepdims=True)
        return [float(x) for x in np.sum((p - ref_p) * np.log(p / ref_p), axis=1)]

    def _compute_sorted(self, ordered: npt.NDArray[np.float64]) -> float:
        # The counts of _counts, read off the sorted window at the edges: a
        # dozen binary searches instead of one per value.
        edges = self._edges
        bounds = np.empty(edges.size + 2, dtype=np.int64)
        bounds[0] = 0
        bounds[1:-2] = np.searchsorted(ordered, edges[:-1], side="left")
        bounds[-2] = np.searchsorted(ordered, edges[-1], side="right")  # the max: last inner bin
        bounds[-1] = ordered.size
        p = self._smooth(np.diff(bounds).astype(np.float64))
        return float(np.sum((p - self._ref_p) * np.log(p / self._ref_p)))


def _keyed(values: npt.NDArray[np.float64]) -> npt.NDArray[np.complex128]:
    # Row g's values as g + value*i: complex numbers sort by real then imaginary
    # part, so one binary search serves every row (each row sorted, rows in order).
    keyed = np.empty(values.shape, dtype=np.complex128)
    keyed.real = np.arange(values.shape[0])[:, None]
    keyed.imag = values
    return keyed

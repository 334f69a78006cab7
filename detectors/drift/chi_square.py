"""ChiSquareDrift: Pearson's two-sample chi-square test on category frequencies."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.base import FloatArray
from detectors.drift.base import IntArray
from detectors.drift.categorical import (
    CategoricalDriftDetector,
    CategoricalDriftParams,
    sums_over_nonzero,
)


class ChiSquareDrift(CategoricalDriftDetector[CategoricalDriftParams]):
    """Flags a categorical feature (or class mix) whose frequencies moved.

    Pearson's chi-square of the 2 x C table (reference counts, window counts)
    over the reference's frequent categories plus "other"; the threshold is the
    chi-square ``1 - alpha`` quantile with C - 1 degrees of freedom. Rare
    categories share the "other" cell so no cell has a tiny expectation (which
    would give the statistic a far heavier tail than chi-square).

    Parameters: :class:`~detectors.drift.categorical.CategoricalDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> before = rng.choice(["DE", "FR", "US"], 3000, p=[0.5, 0.3, 0.2])
        >>> after = rng.choice(["DE", "FR", "US"], 1000, p=[0.3, 0.3, 0.4])
        >>> detector = ChiSquareDrift()
        >>> stream = np.concatenate([before, after])
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"mix changed at {start + change.index}")
        mix changed at 3399
    """

    Params = CategoricalDriftParams

    def _fit_table(
        self, ref_counts: npt.NDArray[np.float64], names: npt.NDArray[Any], counts: IntArray
    ) -> float:
        return self._table_quantile(ref_counts)

    def _compute(self) -> float:
        return chi_square(self._ref_counts.astype(np.float64), self.window_counts())

    @classmethod
    def _table_statistics(cls, ref: FloatArray, recent: FloatArray) -> FloatArray:
        # chi_square of each row, in the same operations (the lockstep's checks)
        total = ref + recent
        m, n = ref.sum(axis=1, keepdims=True), recent.sum(axis=1, keepdims=True)
        expected_ref, expected_recent = total * (m / (m + n)), total * (n / (m + n))
        used = total > 0
        with np.errstate(divide="ignore", invalid="ignore"):  # empty cells: left out
            return sums_over_nonzero((ref - expected_ref) ** 2 / expected_ref, used) + (
                sums_over_nonzero((recent - expected_recent) ** 2 / expected_recent, used)
            )


def chi_square(ref: npt.NDArray[np.float64], recent: npt.NDArray[np.float64]) -> float:
    """Pearson's statistic of the 2 x C table, empty columns left out."""
    # Checked every few hundred values for every categorical feature: as few NumPy
    # calls as give the same sums (a method's sum is np.sum's reduction, without
    # its wrapper).
    total = ref + recent
    if total[:-1].all():  # at most the last column ("other") empty: a view, not a copy
        if not total[-1]:
            ref, recent, total = ref[:-1], recent[:-1], total[:-1]
    else:
        used = total > 0
        ref, recent, total = ref[used], recent[used], total[used]
    m, n = ref.sum(), recent.sum()
    share_ref, share_recent = m / (m + n), n / (m + n)
    expected_ref, expected_recent = total * share_ref, total * share_recent
    return float(
        ((ref - expected_ref) ** 2 / expected_ref).sum()
        + ((recent - expected_recent) ** 2 / expected_recent).sum()
    )

"""JensenShannonDrift: the Jensen-Shannon divergence of category frequencies."""

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


class JensenShannonDrift(CategoricalDriftDetector[CategoricalDriftParams]):
    """Flags a categorical feature whose frequencies moved, in nats of divergence.

    The statistic is the Jensen-Shannon divergence of the reference and window
    frequencies weighted by their sizes ``m`` and ``n``; with those weights
    ``2 (n + m) JS`` is exactly the G-test statistic of the 2 x C table, which is
    chi-square with C - 1 degrees of freedom under no change: that sets the
    threshold. Unlike chi-square it stays finite and bounded (by ln 2) however
    lopsided the change.

    Parameters: :class:`~detectors.drift.categorical.CategoricalDriftParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> before = rng.choice(["web", "ios", "android"], 3000, p=[0.6, 0.2, 0.2])
        >>> after = rng.choice(["web", "ios", "android"], 1000, p=[0.4, 0.2, 0.4])
        >>> detector = JensenShannonDrift()
        >>> stream = np.concatenate([before, after])
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"mix changed at {start + change.index}")
        mix changed at 3499
    """

    Params = CategoricalDriftParams

    def _fit_table(
        self, ref_counts: npt.NDArray[np.float64], names: npt.NDArray[Any], counts: IntArray
    ) -> float:
        total = ref_counts.sum() + self.params.window
        return self._table_quantile(ref_counts) / (2 * total)

    def _compute(self) -> float:
        return jensen_shannon(self._ref_counts.astype(np.float64), self.window_counts())

    @classmethod
    def _table_statistics(cls, ref: FloatArray, recent: FloatArray) -> FloatArray:
        # jensen_shannon of each row, in the same operations (the lockstep's checks)
        m, n = ref.sum(axis=1, keepdims=True), recent.sum(axis=1, keepdims=True)
        mixture = (ref + recent) / (m + n)
        weighted = m[:, 0] * _entropy_rows(ref / m) + n[:, 0] * _entropy_rows(recent / n)
        return _entropy_rows(mixture) - weighted / (m + n)[:, 0]


def jensen_shannon(ref: npt.NDArray[np.float64], recent: npt.NDArray[np.float64]) -> float:
    """Size-weighted Jensen-Shannon divergence (nats) of two count vectors."""
    m, n = ref.sum(), recent.sum()
    mixture = (ref + recent) / (m + n)
    return float(_entropy(mixture) - (m * _entropy(ref / m) + n * _entropy(recent / n)) / (m + n))


def _entropy(p: npt.NDArray[np.float64]) -> float:
    # Frequencies (never negative) without their zeros; usually at most the last
    # ("other") is one: a view then, in fewer NumPy calls than a mask.
    if not p[:-1].all():
        p = p[p > 0]
    elif not p[-1]:
        p = p[:-1]
    return float(-(p * np.log(p)).sum())


def _entropy_rows(p: FloatArray) -> FloatArray:
    """:func:`_entropy` of each row."""
    with np.errstate(divide="ignore", invalid="ignore"):  # zeros: left out
        return -sums_over_nonzero(p * np.log(p), p > 0)

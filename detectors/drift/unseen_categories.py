"""UnseenCategories: categories the reference never had, more often than chance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.distributions import binom_isf
from detectors.drift.base import IntArray, SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.categorical import CategoricalDriftDetector, CategoricalDriftParams


class UnseenCategoriesParams(CategoricalDriftParams):
    """Parameters of :class:`UnseenCategories`."""

    max_categories: int = Field(
        default=1000, ge=1, description="Known categories kept (bounded memory)."
    )


class UnseenCategories(CategoricalDriftDetector[UnseenCategoriesParams]):
    """Flags a categorical feature that starts taking values the reference never had.

    Good-Turing: the chance that a new value is a category unseen in ``m``
    reference values is about (categories seen once + 1) / (m + 1). Up to
    ``max_categories`` known categories are kept (the most frequent; the mass of
    dropped ones is added to that chance). The window's count of unseen values is
    checked against the binomial ``1 - alpha`` quantile; the statistic is the
    count above its expectation.

    Parameters: :class:`UnseenCategoriesParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> before = rng.choice(["visa", "mastercard", "amex"], 3000)
        >>> after = rng.choice(["visa", "mastercard", "amex", "crypto"], 1000)
        >>> detector = UnseenCategories()
        >>> stream = np.concatenate([before, after])
        >>> for start in range(0, stream.size, 50):
        ...     for change in detector.update(stream[start : start + 50]).changes:
        ...         print(f"new categories from {start + change.index}")
        new categories from 3199
    """

    Params = UnseenCategoriesParams

    def _reset_state(self) -> None:
        super()._reset_state()
        self._known: frozenset[str] = frozenset()
        self._expected = 0.0

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        names, counts = np.unique(reference.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")[: self.params.max_categories]
        self._known = frozenset(str(names[i]) for i in order)
        dropped = int(reference.size - counts[order].sum())
        singletons = int(np.count_nonzero(counts[order] == 1))
        p = min((singletons + dropped + 1) / (reference.size + 1), 1.0)
        window = self.params.window
        self._expected = window * p
        alpha = per_check_alpha(self.params.false_alarm_rate, self.params.step)
        return max(float(binom_isf(alpha, window, p)) + 1 - self._expected, 1.0)

    def _fit_table(
        self, ref_counts: npt.NDArray[np.float64], names: npt.NDArray[Any], counts: IntArray
    ) -> float:  # pragma: no cover - _fit is overridden
        raise NotImplementedError

    def _encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        seen = np.fromiter(map(self._known.__contains__, values), dtype=bool, count=values.size)
        return (~seen).astype(np.int64)

    def _compute(self) -> float:
        return max(float(self._ring.sum()) - self._expected, 0.0)

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        sums = cls._ring_sums(detectors)  # counts of 0/1: exact
        return [max(float(s) - d._expected, 0.0) for d, s in zip(detectors, sums, strict=True)]

    @property
    def known(self) -> frozenset[str]:
        """The reference's categories (up to ``max_categories``)."""
        return self._known

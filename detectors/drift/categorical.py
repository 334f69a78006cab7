"""The frequency table the categorical detectors compare a window with."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.base import FloatArray
from detectors.distributions import chi2_isf
from detectors.drift.base import IntArray, SortedWindows
from detectors.drift.budget import per_check_alpha
from detectors.drift.window import WindowDriftDetector, WindowDriftParams
from fireline.errors import DetectorError


class CategoricalDriftParams(WindowDriftParams):
    """Parameters of the categorical drift detectors."""

    max_categories: int = Field(
        default=50, ge=1, description="Categories tested one by one, the most frequent first."
    )
    min_expected: float = Field(
        default=5.0,
        gt=0,
        description="Smallest expected window count of a category tested alone.",
    )


CP = TypeVar("CP", bound=CategoricalDriftParams)


class CategoricalDriftDetector(WindowDriftDetector[CP]):
    """A window detector over categories (strings; numbers are taken as their text).

    The reference becomes a table of its categories frequent enough to be tested
    (expected at least ``min_expected`` times in a window), at most
    ``max_categories`` of them; every other category, unseen ones included, is
    counted in one "other" cell. None and NaN are skipped (missing values are
    data quality's business).
    """

    input_kind: ClassVar[str] = "categorical"
    ring_dtype: ClassVar[type] = np.int64

    def _reset_state(self) -> None:
        super()._reset_state()
        self._codes: dict[str, int] = {}
        self._ref_counts: npt.NDArray[Any] = np.zeros(1)

    def valid(self, values: Any) -> tuple[npt.NDArray[Any], IntArray]:
        """The categories of a value or 1-D batch, as text, and their positions in it."""
        if isinstance(values, np.ndarray):
            if values.ndim > 1:
                raise DetectorError(f"expected a value or a 1-D batch, got shape {values.shape}")
            items = values.tolist()
        elif isinstance(values, list | tuple):
            items = list(values)
        else:
            items = [values]
        if {*map(type, items)} <= {str}:  # all text (the usual case): nothing to drop or convert
            return np.array(items, dtype=object), np.arange(len(items))
        keep = [i for i, v in enumerate(items) if _is_category(v)]
        texts = np.array([_text(items[i]) for i in keep], dtype=object)
        return texts, np.array(keep, dtype=np.int64)

    def _fit(self, reference: npt.NDArray[Any]) -> float:
        names, counts = np.unique(reference.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        params = self.params
        floor = params.min_expected * reference.size / params.window
        kept = [int(i) for i in order[: params.max_categories] if counts[i] >= floor]
        self._codes = {str(names[i]): code for code, i in enumerate(kept)}
        self._ref_counts = np.bincount(self._encode(reference), minlength=len(kept) + 1)
        return self._fit_table(self._ref_counts.astype(np.float64), names, counts)

    def _fit_table(
        self, ref_counts: npt.NDArray[np.float64], names: npt.NDArray[Any], counts: IntArray
    ) -> float:
        """Calibrate on the table (reference counts per code, "other" last)."""
        raise NotImplementedError

    def _table_quantile(self, ref_counts: npt.NDArray[np.float64]) -> float:
        """The chi-square quantile of the table's per-check alpha (C - 1 degrees of freedom).

        Both chi-square and the G-test (hence Jensen-Shannon) follow it under no change.
        """
        alpha = per_check_alpha(self.params.false_alarm_rate, self.params.step)
        return float(chi2_isf(alpha, max(ref_counts.size - 1, 1)))

    def encodes_like(self, other: Any) -> bool:
        """Chi-square and Jensen-Shannon fitted on one reference share their codes."""
        encoder = CategoricalDriftDetector._encode
        return (
            type(self)._encode is encoder
            and type(other)._encode is encoder
            and self._codes == other._codes
        )

    def _encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        # map() with the dict's own get: no Python frame per value
        lookup = map(self._codes.get, values, repeat(len(self._codes)))
        return np.fromiter(lookup, dtype=np.int64, count=values.size)

    def window_counts(self) -> npt.NDArray[np.float64]:
        """Counts per code ("other" last) in the recent window."""
        counts = np.bincount(self._ring[: self._filled], minlength=len(self._codes) + 1)
        return counts.astype(np.float64)

    @classmethod
    def _encode_block(
        cls, detectors: Sequence[Self], block: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        # Each row's categories to codes once for the block, not once per chunk.
        return np.array([d._encode(row) for d, row in zip(detectors, block, strict=True)])

    @classmethod
    def _encode_many(
        cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        return chunk  # encoded with the block already

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        """The statistic of each detector's table, tables of one width at a time.

        A subclass gives its statistic over rows of tables (:meth:`_table_statistics`);
        the rings are counted into those rows with one bincount. One without it
        (a new test) computes each detector's own.
        """
        if getattr(cls._table_statistics, "__func__", None) is _NO_TABLE_FORM:
            return [float(detector._compute()) for detector in detectors]
        stats = [0.0] * len(detectors)
        by_width: dict[int, list[int]] = {}
        for i, detector in enumerate(detectors):  # a width is fixed when a detector is fitted
            by_width.setdefault(detector._ref_counts.size, []).append(i)
        for width, members in by_width.items():
            group = [detectors[i] for i in members]
            ref = np.array([d._ref_counts for d in group], dtype=np.float64)
            rings = np.array([d._ring for d in group])  # full: checks wait for a full window
            shifted = rings + (np.arange(len(group)) * width)[:, None]  # row g: its own cells
            recent = np.bincount(shifted.ravel(), minlength=len(group) * width)
            found = cls._table_statistics(ref, recent.reshape(len(group), width).astype(float))
            for i, stat in zip(members, found.tolist(), strict=True):
                stats[i] = stat
        return stats

    @classmethod
    def _table_statistics(cls, ref: FloatArray, recent: FloatArray) -> FloatArray:
        """:meth:`_compute` of each row's table (reference counts, window counts), to the bit.

        Optional: the lockstep's vectorised checks. Without it a test's checks run
        detector by detector, with the same results.
        """
        raise NotImplementedError

    @property
    def categories(self) -> list[str]:
        """The categories tested one by one (the rest share the "other" cell)."""
        return list(self._codes)


def sums_over_nonzero(terms: FloatArray, nonzero: npt.NDArray[np.bool_]) -> FloatArray:
    """Each row's sum of ``terms`` where ``nonzero``, to the bit as the row's kept terms summed.

    NumPy sums each row of a 2-D array as it sums a 1-D one, but the same terms in
    a longer row are added in another order: so the rows are summed as long as the
    scalar statistics sum them (all cells; all but the last, "other"; or those kept).
    """
    inner, last = nonzero[:, :-1].all(axis=1), nonzero[:, -1]
    if inner.all():  # the usual tables: no empty cell but perhaps "other", in every row
        if last.all():
            return terms.sum(axis=1)
        if not last.any():
            return np.ascontiguousarray(terms[:, :-1]).sum(axis=1)
    sums = np.empty(terms.shape[0])
    whole, trimmed = inner & last, inner & ~last
    if whole.any():
        sums[whole] = terms[whole].sum(axis=1)
    if trimmed.any():
        sums[trimmed] = terms[trimmed, :-1].sum(axis=1)
    for i in np.flatnonzero(~inner):  # empty cells inside the table: rare
        sums[i] = terms[i][nonzero[i]].sum()
    return sums


def _is_category(value: object) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


# The base's _table_statistics: a subclass that keeps it has no form over rows.
_NO_TABLE_FORM = CategoricalDriftDetector.__dict__["_table_statistics"].__func__

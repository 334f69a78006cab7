"""The base of the reference-vs-recent detectors of prediction logs.

A :class:`DriftDetector` captures a *reference* from the first
``reference_size`` valid values it sees (or from :meth:`DriftDetector.fit`), then
*checks* the values that follow against it every ``step`` values. Each check
yields a statistic; the alarm rises after ``consecutive`` checks at or above the
calibrated ``threshold`` and clears after as many below ``clear_ratio`` times it
(hysteresis). :attr:`score` is ``statistic / (statistic + threshold)``: 0.5 at
the threshold, in [0, 1) always.

Checks happen at fixed counts of valid values, so results never depend on how
the stream was cut into micro-batches. Thresholds come from
``false_alarm_rate``: the expected false alarms *per value* of a stationary
stream (see :mod:`detectors.drift.budget` for how a monitor splits its budget).

State is small and picklable: the reference is reduced to a sketch (quantiles,
bins, a frequency table) when it is fitted, and the recent window is a
fixed-size ring.

Many detectors fed the same number of values at the same time (a monitor's
numeric features) stay in step; :meth:`DriftDetector.update_many` feeds them
together, each class vectorising its own state through the lockstep hooks
(``_fixed_many``, ``_encode_block``, ``_absorb_many``, ``_statistics_many``), with the same outcome
as one by one.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.base import (
    AlarmChange,
    Detector,
    FloatArray,
    Timestamps,
    bounded,
    check_timestamps,
)
from detectors.params import DetectorParams, at_most
from fireline.errors import DetectorError

IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]


class DriftParams(DetectorParams):
    """Parameters every drift detector has."""

    reference_size: int = Field(
        default=2000, ge=20, description="Valid values captured as the reference."
    )
    step: int = Field(default=100, ge=1, description="Valid values between checks.")
    false_alarm_rate: float = Field(
        default=1e-9,
        gt=0,
        lt=0.01,
        description="Expected false alarms per value of a stationary stream.",
    )
    consecutive: int = Field(
        default=2, ge=1, description="Checks in a row at or above the threshold to raise."
    )
    clear_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Checks below this fraction of the threshold clear (as many in a row).",
    )
    min_reference: int = Field(
        default=100, ge=2, description="Valid values a reference given to fit() needs."
    )

    rules = (at_most("min_reference", "reference_size"),)


DP = TypeVar("DP", bound=DriftParams)


class Phase(NamedTuple):
    """Where a fitted drift detector stands between two checks.

    Detectors in one phase that are fed the same number of values check at the
    same values (and, with a window, write the same slots of it).
    """

    step: int
    since_check: int  # valid values since the last check
    ring: tuple[int, int, int] | None = None  # window size, next slot, values in it


class SortedWindows:
    """The recent windows of one lockstep check, sorted once for every test that needs it.

    KS, PSI and Wasserstein each need a feature's window sorted. Fed together
    since they were fitted, they hold the same values: the first sort serves the
    others, after comparing the windows unless the caller vouched for them
    (``same``, see :meth:`DriftDetector.update_many`).
    """

    def __init__(self, same: bool = False) -> None:
        self._same = same
        self._done: list[tuple[FloatArray, FloatArray]] = []

    def sort(self, windows: Sequence[npt.NDArray[Any]]) -> FloatArray:
        """The ``windows`` (one per row, equal sizes) as rows, each sorted."""
        if self._same and self._done and self._done[0][1].shape[0] == len(windows):
            return self._done[0][1]
        rows = np.array(windows)
        for raw, ordered in self._done:
            if raw.shape == rows.shape and np.array_equal(raw, rows):
                return ordered
        ordered = np.sort(rows, axis=1)
        self._done.append((rows, ordered))
        return ordered


class DriftDetector(Detector[DP]):
    """A detector that compares recent values with a reference captured first.

    Its :attr:`changes` give the statistic as ``observed`` and the threshold as
    ``baseline``; :attr:`score` is ``statistic / (statistic + threshold)`` at the
    last check. Parameters: a :class:`DriftParams` model (see :mod:`detectors.params`).
    """

    # -- lifecycle -----------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything, including the reference, as if just constructed."""
        self._statistic = 0.0
        self._threshold = math.nan
        self._run = 0  # checks in a row that disagree with the alarm state
        self._since_check = 0
        self._reference: list[Any] | None = []  # raw values until fitted, then None
        super().reset()

    @property
    def fitted(self) -> bool:
        """Whether the reference has been captured (checks run from then on)."""
        return self._reference is None

    def fit(self, reference: Sequence[Any] | npt.NDArray[Any]) -> Self:
        """Capture ``reference`` (invalid values dropped) as the reference now."""
        values, _ = self.valid(reference)
        if values.size < self.params.min_reference:
            raise DetectorError(
                f"{type(self).__name__}: the reference needs at least "
                f"{self.params.min_reference} valid values; got {values.size}."
            )
        self._reset_state()
        self._threshold = float(self._fit(values))
        self._reference = None
        return self

    # -- hot path --------------------------------------------------------------------

    def update(self, values: Any, timestamps: Timestamps | None = None) -> Self:
        """Learn from one value or a micro-batch (list or 1-D array), in order.

        Invalid values (NaN, infinities, None; for numeric detectors also
        strings) are skipped: a missing value is data quality's business. Checks
        happen at counts of valid values, so ``timestamps`` are only checked
        (one per value), not read.
        """
        if timestamps is not None:
            check_timestamps(timestamps, _length(values))
        batch, positions = self.valid(values)
        return self.update_valid(batch, positions)

    def update_valid(
        self,
        batch: npt.NDArray[Any],
        positions: IntArray | None = None,
        encoded: npt.NDArray[Any] | None = None,
    ) -> Self:
        """:meth:`update` on the values :meth:`valid` kept, with their positions.

        ``positions=None``: every value was valid. A caller feeding several
        detectors the same values validates them once (the
        :class:`~detectors.monitor.model_monitor.ModelMonitor` does), and
        encodes them once for detectors that encode alike (``encoded``: the
        batch as :meth:`encode` of one that :meth:`encodes_like` this one gives it).
        """
        self._changes = []
        step = self.params.step
        start = 0
        while start < batch.size and self._reference is not None:
            start += self._capture(batch[start:])
        if start < batch.size:  # encoded once: an encoding is value by value
            if encoded is None:
                encoded = self._encode(batch[start:] if start else batch)
            elif start:
                encoded = encoded[start:]
        first = start
        while start < batch.size:
            assert encoded is not None
            take = min(batch.size - start, step - self._since_check)
            self._absorb(encoded[start - first : start - first + take])
            self._since_check += take
            start += take
            if self._since_check == step:
                self._since_check = 0
                if self._ready():
                    self._judge(start - 1 if positions is None else int(positions[start - 1]))
        self._seen += batch.size
        return self

    @property
    def phase(self) -> Phase | None:
        """Where the detector stands between checks; None until it is fitted."""
        state = self._lockstep_state()
        if state is None:
            return None
        ring = (state[2], state[3], state[4]) if len(state) == 5 else None
        return Phase(state[0], state[1], ring)

    def _lockstep_state(self) -> tuple[int, ...] | None:
        """:attr:`phase` as a plain tuple (step, since_check[, window, slot, filled])."""
        return None if self._reference is not None else (self.params.step, self._since_check)

    @classmethod
    def update_many(
        cls,
        rows: Sequence[Sequence[DriftDetector[Any]]],
        block: npt.NDArray[Any],
        *,
        same_windows: bool = False,
    ) -> int:
        """Feed row ``g`` of ``block`` to each detector of ``rows[g]``; return the rows fed together.

        The values must be valid already (:meth:`valid` keeps them all), e.g. the
        finite values of many numeric features in one micro-batch, a row each.
        Rows of detectors of the same classes, sharing their parameter instances,
        all in one :attr:`phase`, are fed together: each class updates the
        detectors of all those rows with a few NumPy calls per micro-batch and per
        check (encodings, windows, CUSUMs, statistics), whatever their number,
        where each detector fed on its own would cost as many. The outcome is
        exactly that of :meth:`update_valid` on each detector (the conformance
        tests check it); the other rows are fed that way.

        ``same_windows``: the caller vouches that the detectors of a row that
        sort their window (KS, PSI, Wasserstein) hold the same values, as those
        fitted on one reference and always fed together do; one sort then serves
        them without comparing their windows first.
        """
        if block.ndim != 2 or block.shape[0] != len(rows):
            raise DetectorError(
                f"expected one row of values per row of detectors ({len(rows)}); "
                f"got shape {block.shape}"
            )
        groups: dict[tuple[Any, ...], list[int]] = {}
        for g, row in enumerate(rows):
            key = _lockstep_key(row)
            if key is None:
                for detector in row:
                    detector.update_valid(block[g])
            else:
                groups.setdefault(key, []).append(g)
        together = 0
        for members in groups.values():
            if len(members) == 1:  # alone, the usual path is as fast
                for detector in rows[members[0]]:
                    detector.update_valid(block[members[0]])
                continue
            _lockstep([rows[g] for g in members], block[members], same_windows)
            together += len(members)
        return together

    def _capture(self, values: npt.NDArray[Any]) -> int:
        assert self._reference is not None
        size = self.params.reference_size
        take = min(values.size, size - len(self._reference))
        self._reference.extend(values[:take].tolist())
        if len(self._reference) == size:
            self.fit(np.asarray(self._reference, dtype=values.dtype))
        return take

    def _judge(self, index: int, stat: float | None = None) -> None:
        """Check now; ``stat`` is the statistic if the caller computed it already."""
        stat = float(self._compute()) if stat is None else stat
        self._statistic = stat
        self._score = stat / (stat + self._threshold) if stat > 0 else 0.0
        crossing = (
            stat < self._threshold * self.params.clear_ratio
            if self._alarm
            else stat >= self._threshold
        )
        if crossing:
            self._run += 1
            if self._run >= self.params.consecutive:
                self._alarm = not self._alarm
                self._run = 0
                self._changes.append(
                    AlarmChange(index, self._alarm, stat, self._threshold, self._score)
                )
        else:
            self._run = 0

    # -- input ------------------------------------------------------------------------

    def encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Valid values as a fitted detector stores them (value by value)."""
        return self._encode(values)

    def encodes_like(self, other: DriftDetector[Any]) -> bool:
        """Whether ``other`` encodes every value as this one does (one :meth:`encode` for both).

        False when that is not known.
        """
        return False

    def valid(self, values: Any) -> tuple[npt.NDArray[Any], IntArray]:
        """The valid values of a scalar or 1-D batch, and their positions in it."""
        if isinstance(values, np.ndarray):
            if values.ndim > 1:
                raise DetectorError(f"expected a value or a 1-D batch, got shape {values.shape}")
            array = values
        elif isinstance(values, str | bytes) or not isinstance(values, Sequence):
            array = np.asarray([values], dtype=object)
        else:
            array = np.asarray(values, dtype=object)
            if array.ndim > 1:
                raise DetectorError(f"expected a value or a 1-D batch, got shape {array.shape}")
        return _valid_numeric(array)

    # -- subclass hooks ------------------------------------------------------------------

    @abc.abstractmethod
    def _reset_state(self) -> None:
        """Forget the reference sketch and the recent window."""

    @abc.abstractmethod
    def _fit(self, reference: npt.NDArray[Any]) -> float:
        """Build the reference sketch from valid values; return the calibrated threshold."""

    def _encode(self, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Turn valid values into what :meth:`_absorb` stores (identity by default).

        Value by value, and fixed once fitted: a batch is encoded in one call.
        """
        return values

    @abc.abstractmethod
    def _absorb(self, values: npt.NDArray[Any]) -> None:
        """Add encoded values (at most ``step`` of them) to the recent state."""

    def _ready(self) -> bool:
        """Whether enough recent values are in for a check (e.g. the window is full)."""
        return True

    @abc.abstractmethod
    def _compute(self) -> float:
        """The statistic of the recent state against the reference (>= 0)."""

    # -- lockstep hooks (update_many): each touches its own class's state only -----------

    @classmethod
    def _fixed_many(cls, detectors: Sequence[Self]) -> Any:
        """What the other hooks need of ``detectors`` that feeding does not change.

        Read once per :meth:`update_many` call (e.g. each row's reference
        constants, stacked), then handed to :meth:`_absorb_many` for every chunk.
        """
        return None

    @classmethod
    def _encode_block(
        cls, detectors: Sequence[Self], block: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        """The whole block as :meth:`_absorb_many` takes its chunks (as it is by default).

        A class whose encoding costs a call per row and per chunk (a dictionary
        lookup per value) encodes the block once here instead.
        """
        return block

    @classmethod
    def _absorb_many(cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any) -> None:
        """:meth:`_absorb` of row ``g`` of ``chunk`` (valid values) in ``detectors[g]``."""
        for detector, values in zip(detectors, chunk, strict=True):
            detector._absorb(detector._encode(values))

    @classmethod
    def _statistics_many(cls, detectors: Sequence[Self], windows: SortedWindows) -> list[float]:
        """:meth:`_compute` of each detector (``windows`` shares sorted windows)."""
        return [float(detector._compute()) for detector in detectors]

    # -- read-outs -------------------------------------------------------------------

    @property
    def statistic(self) -> float:
        """The statistic of the last check (0 before the first)."""
        return self._statistic

    @property
    def threshold(self) -> float:
        """The calibrated threshold of the statistic; NaN until the reference is fitted."""
        return self._threshold


def _lockstep_key(row: Sequence[DriftDetector[Any]]) -> tuple[Any, ...] | None:
    """What rows fed together must share; None if the row's detectors are not in step.

    Rows go together when, detector by detector, they have the same class, the
    same parameter instance and the same phase; within a row every detector must
    be at the same count between checks (the chunks are cut for all at once).
    """
    states = tuple([d._lockstep_state() for d in row])
    if None in states:
        return None
    first = states[0]
    assert first is not None
    for state in states:
        assert state is not None
        if state[0] != first[0] or state[1] != first[1]:
            return None
    return (tuple(map(type, row)), tuple([id(d.params) for d in row]), states)


def _lockstep(
    rows: list[Sequence[DriftDetector[Any]]], block: npt.NDArray[Any], same_windows: bool
) -> None:
    """update_valid of row ``g`` of ``block`` on every detector of ``rows[g]``, all in one phase."""
    columns = list(zip(*rows, strict=True))  # column j: the j-th detector of every row
    detectors = [d for row in rows for d in row]
    for detector in detectors:
        detector._changes = []
    fixed = [type(column[0])._fixed_many(column) for column in columns]
    blocks = [
        type(column[0])._encode_block(column, block, constants)
        for column, constants in zip(columns, fixed, strict=True)
    ]
    first = rows[0][0]
    step, since = first.params.step, first._since_check
    n = block.shape[1]
    start = 0
    while start < n:
        take = min(n - start, step - since)
        for column, constants, values in zip(columns, fixed, blocks, strict=True):
            type(column[0])._absorb_many(column, values[:, start : start + take], constants)
        start += take
        since += take
        if since == step:
            since = 0
            windows = SortedWindows(same_windows)
            for column in columns:
                if not column[0]._ready():  # in one phase: all ready or none
                    continue
                stats = type(column[0])._statistics_many(column, windows)
                for detector, stat in zip(column, stats, strict=True):
                    detector._judge(start - 1, stat)
    for detector in detectors:
        detector._since_check = since
        detector._seen += n


def _length(values: Any) -> int:
    """How many values a scalar or 1-D batch holds."""
    if isinstance(values, np.ndarray):
        return values.size
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        return 1
    return len(values)


def _valid_numeric(array: npt.NDArray[Any]) -> tuple[FloatArray, IntArray]:
    if array.dtype.kind in "fiub":
        floats = array.astype(np.float64, copy=False)
    else:  # objects: numbers pass, anything else (None, strings) becomes NaN
        floats = np.fromiter(
            (
                v if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
                for v in array
            ),
            dtype=np.float64,
            count=array.size,
        )
    floats = bounded(floats)
    finite = np.isfinite(floats)
    if finite.all():
        return floats, np.arange(floats.size)
    return floats[finite], np.flatnonzero(finite)


__all__ = ["DriftDetector", "DriftParams", "Phase", "SortedWindows"]

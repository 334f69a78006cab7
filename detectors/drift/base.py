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
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.base import AlarmChange, Detector, FloatArray, Timestamps, check_timestamps
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


class WindowDriftParams(DriftParams):
    """Parameters of a drift detector whose recent state is a sliding window."""

    window: int = Field(
        default=500, ge=10, description="Recent values compared with the reference."
    )

    rules = (at_most("step", "window"),)


DP = TypeVar("DP", bound=DriftParams)
WP = TypeVar("WP", bound=WindowDriftParams)


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
        values, _ = self._valid(reference)
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
        batch, positions = self._valid(values)
        self._feed(batch, positions)
        return self

    def _feed(self, batch: npt.NDArray[Any], positions: IntArray | None) -> None:
        """:meth:`update` on values already validated (``positions=None``: all were valid).

        A caller feeding several detectors the same values validates them once
        (the :class:`~detectors.monitor.model_monitor.ModelMonitor` does).
        """
        self._changes = []
        step = self.params.step
        start = 0
        while start < batch.size:
            if self._reference is not None:
                start += self._capture(batch[start:])
                continue
            take = min(batch.size - start, step - self._since_check)
            self._absorb(self._encode(batch[start : start + take]))
            self._since_check += take
            start += take
            if self._since_check == step:
                self._since_check = 0
                if self._ready():
                    self._judge(start - 1 if positions is None else int(positions[start - 1]))
        self._seen += batch.size

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

    def _valid(self, values: Any) -> tuple[npt.NDArray[Any], IntArray]:
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
        """Turn valid values into what :meth:`_absorb` stores (identity by default)."""
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

    # -- read-outs -------------------------------------------------------------------

    @property
    def statistic(self) -> float:
        """The statistic of the last check (0 before the first)."""
        return self._statistic

    @property
    def threshold(self) -> float:
        """The calibrated threshold of the statistic; NaN until the reference is fitted."""
        return self._threshold


class WindowDriftDetector(DriftDetector[WP]):
    """A drift detector whose recent state is a sliding window of ``window`` values.

    The statistics used here do not depend on the order inside the window, so the
    ring is never rotated.
    """

    ring_dtype: ClassVar[type] = np.float64

    def _reset_state(self) -> None:
        self._ring: npt.NDArray[Any] = np.zeros(self.params.window, dtype=self.ring_dtype)
        self._filled = 0
        self._pos = 0

    def _absorb(self, values: npt.NDArray[Any]) -> None:
        n = values.size
        window = self.params.window
        end = self._pos + n
        if end <= window:
            self._ring[self._pos : end] = values
        else:
            split = window - self._pos
            self._ring[self._pos :] = values[:split]
            self._ring[: n - split] = values[split:]
        self._pos = end % window
        self._filled = min(window, self._filled + n)

    def _ready(self) -> bool:
        return self._filled == self.params.window

    def recent(self) -> npt.NDArray[Any]:
        """The recent window (unordered)."""
        return self._ring[: self._filled]


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
    finite = np.isfinite(floats)
    if finite.all():
        return floats, np.arange(floats.size)
    return floats[finite], np.flatnonzero(finite)


__all__ = ["DriftDetector", "DriftParams", "WindowDriftDetector", "WindowDriftParams"]

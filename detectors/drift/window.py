"""The drift detectors whose recent state is a sliding window of the last values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.base import FloatArray
from detectors.drift.base import DriftDetector, DriftParams, SortedWindows
from detectors.params import at_most


class WindowDriftParams(DriftParams):
    """Parameters of a drift detector whose recent state is a sliding window."""

    window: int = Field(
        default=500, ge=10, description="Recent values compared with the reference."
    )

    rules = (at_most("step", "window"),)


WP = TypeVar("WP", bound=WindowDriftParams)


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

    def _lockstep_state(self) -> tuple[int, ...] | None:
        # The phase with the window's size, next slot and fill.
        if self._reference is not None:
            return None
        params = self.params
        return (params.step, self._since_check, params.window, self._pos, self._filled)

    # -- lockstep (see DriftDetector.update_many) -------------------------------------

    @classmethod
    def _absorb_many(cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any) -> None:
        # _absorb of each row, the same slots of every ring (they are in one phase).
        encoded = cls._encode_many(detectors, chunk, fixed)
        first = detectors[0]
        window, pos, take = first.params.window, first._pos, chunk.shape[1]
        split = min(take, window - pos)
        for detector, values in zip(detectors, encoded, strict=True):
            ring = detector._ring
            ring[pos : pos + split] = values[:split]
            if split < take:  # wraps around
                ring[: take - split] = values[split:]
        pos, filled = (pos + take) % window, min(window, first._filled + take)
        for detector in detectors:
            detector._pos, detector._filled = pos, filled

    @classmethod
    def _encode_many(
        cls, detectors: Sequence[Self], chunk: npt.NDArray[Any], fixed: Any
    ) -> npt.NDArray[Any]:
        """:meth:`_encode` of each row (as they are, for a class that does not encode)."""
        if cls._encode is DriftDetector._encode:
            return chunk
        return np.array([d._encode(row) for d, row in zip(detectors, chunk, strict=True)])

    @classmethod
    def _ring_sums(cls, detectors: Sequence[Self]) -> FloatArray:
        """Each ring's sum (exact for the counts of 0/1 values the count tests keep)."""
        return np.array([d._ring for d in detectors]).sum(axis=1)

    @classmethod
    def _sorted_rings(cls, detectors: Sequence[Self], windows: SortedWindows) -> FloatArray:
        """The rings as rows, each sorted (once per check for every test that asks)."""
        return windows.sort([d._ring for d in detectors])


__all__ = ["WindowDriftDetector", "WindowDriftParams"]

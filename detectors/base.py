"""The small base every detector builds on.

A detector is a plain, picklable object. Feed it with :meth:`Detector.update`, one
value or a NumPy micro-batch, then read :attr:`alarm` (with hysteresis) and
:attr:`score` (in [0, 1], higher is more anomalous). No Kafka, no Faust, no I/O.
"""

from __future__ import annotations

import abc
from typing import Self

import numpy as np
import numpy.typing as npt

from fireline.errors import DetectorError

FloatArray = npt.NDArray[np.float64]


class Detector(abc.ABC):
    """A streaming detector over one numeric series."""

    def __init__(self) -> None:
        self._alarm = False
        self._score = 0.0
        self._seen = 0

    def update(self, values: float | npt.ArrayLike) -> Self:
        """Learn from one value or a batch, in order; NaN values are skipped."""
        batch = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if batch.ndim != 1:
            raise DetectorError(f"expected a value or a 1-D batch, got shape {batch.shape}")
        batch = batch[np.isfinite(batch)]
        if batch.size:
            self._update_batch(batch)
            self._seen += int(batch.size)
        return self

    @abc.abstractmethod
    def _update_batch(self, batch: FloatArray) -> None:
        """Learn from a non-empty batch of finite values."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything learned, as if just constructed."""

    @property
    def alarm(self) -> bool:
        """Whether the detector currently signals an anomaly."""
        return self._alarm

    @property
    def score(self) -> float:
        """How anomalous the latest value is, in [0, 1]."""
        return self._score

    @property
    def seen(self) -> int:
        """Finite values learned since construction or the last reset."""
        return self._seen

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, object]:
        return {}

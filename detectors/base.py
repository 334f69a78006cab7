"""The small base every detector builds on.

A detector is a plain, picklable object. Feed it with :meth:`Detector.update`, one
value or a NumPy micro-batch, then read :attr:`alarm` (with hysteresis) and
:attr:`score` (in [0, 1], higher is more anomalous). No Kafka, no Faust, no I/O.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
import numpy.typing as npt

from detectors.params import DetectorParams
from fireline.errors import DetectorError

P = TypeVar("P", bound=DetectorParams)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """The alarm rose or cleared at one point of the last :meth:`Detector.update`."""

    index: int  # position in the values given to that update
    raised: bool
    observed: float  # the peak of the run that raised it, or the value that cleared it
    baseline: float
    score: float
    adapted: bool = False  # cleared because the level became the new normal, not a recovery


class Detector(abc.ABC, Generic[P]):
    """A streaming detector over one numeric series.

    Its parameters are one frozen :attr:`Params` model (see
    :mod:`detectors.params`): ``Detector(params)`` shares the instance,
    ``Detector(window=50)`` validates the keywords against the defaults, and a bad
    value raises a DetectorError naming the parameter and the rule.
    """

    #: The model that declares this detector's parameters.
    Params: ClassVar[type[DetectorParams]]

    def __init__(self, params: P | None = None, /, **overrides: Any) -> None:
        self.params = cast(P, self.Params.of(params, overrides, type(self).__name__))
        self._reset_common()

    def reset(self) -> None:
        """Forget everything learned, as if just constructed."""
        self._reset_common()
        self._reset_state()

    def _reset_common(self) -> None:
        self._alarm = False
        self._score = 0.0
        self._seen = 0
        self._changes: list[AlarmChange] = []
        self._cursor = -1  # position of the point being learned within the current update
        # Event times (epoch seconds) of the finite values of the current update, when
        # the caller gave them; only during _update_batch (never part of the state).
        self._batch_times: list[float] | None = None

    def update(
        self,
        values: float | Sequence[float] | npt.NDArray[Any],
        timestamps: float | Sequence[float] | npt.NDArray[Any] | None = None,
    ) -> Self:
        """Learn from one value or a micro-batch (list or 1-D array), in order.

        NaN and infinite values are skipped: a gap in a metric is not a spike.
        ``timestamps`` (epoch seconds, one per value) are optional; detectors that
        use event time (seasonal baselines) read those of the kept values from
        ``self._batch_times``; the others ignore them.
        """
        batch = _as_floats(values)
        times = None if timestamps is None else _as_floats(timestamps)
        if times is not None:
            if len(times) != len(batch):
                raise DetectorError(
                    f"expected one timestamp per value, got {len(times)} for {len(batch)} values"
                )
            if not all(math.isfinite(t) for t in times):
                raise DetectorError("timestamps must be finite epoch seconds")
        # Plain floats, not NumPy scalars: the per-point bookkeeping of small
        # micro-batches (a few points per series) is faster in Python.
        finite = [v for v in batch if math.isfinite(v)]
        self._changes = []
        if finite:
            self._cursor = -1
            if times is not None and len(finite) != len(batch):
                times = [t for t, v in zip(times, batch, strict=True) if math.isfinite(v)]
            self._batch_times = times
            try:
                self._update_batch(finite)
            finally:
                self._batch_times = None
            self._seen += len(finite)
            if len(finite) != len(batch):  # report positions in the caller's batch
                kept = [i for i, v in enumerate(batch) if math.isfinite(v)]
                self._changes = [replace(c, index=kept[c.index]) for c in self._changes]
        return self

    def _note_change(
        self, raised: bool, observed: float, baseline: float, adapted: bool = False
    ) -> None:
        """Subclasses call this when the alarm rises or clears at the current point."""
        self._changes.append(
            AlarmChange(self._cursor, raised, observed, baseline, self._score, adapted)
        )

    @property
    def changes(self) -> list[AlarmChange]:
        """Every rise and clear of the alarm during the last update, in order.

        A micro-batch can hold a whole short spike; reading only :attr:`alarm`
        afterwards would miss it, and when it happened.
        """
        return list(self._changes)

    @abc.abstractmethod
    def _update_batch(self, batch: list[float]) -> None:
        """Learn from a non-empty batch of finite values, oldest first."""

    @abc.abstractmethod
    def _reset_state(self) -> None:
        """Forget the subclass's own state (the base resets alarm, score and counts)."""

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

    @classmethod
    def conformance_params(cls) -> Iterator[dict[str, Any]]:
        """Parameters the conformance tests build this detector with (river's idea).

        The generic checks feed each a spike stream: a detector that needs other
        parameters to show its alarm on it says so here.
        """
        yield {}

    def __repr__(self) -> str:
        return self.Params.render(type(self).__name__, self.params)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "params" not in state:  # pickled by an older fireline: start afresh
            raise DetectorError(f"{type(self).__name__}: a checkpoint without parameters")
        self.__dict__.update(state)


def _as_floats(values: float | Sequence[float] | npt.NDArray[Any]) -> list[float]:
    if isinstance(values, int | float | np.number):
        return [float(values)]
    if isinstance(values, np.ndarray):
        if values.ndim > 1:
            raise DetectorError(f"expected a value or a 1-D batch, got shape {values.shape}")
        return values.astype(np.float64, copy=False).ravel().tolist()
    return [float(v) for v in values]

"""The root every detector builds on: parameters, one ``update``, an alarm and a score.

A detector is a plain, picklable object. Feed it with :meth:`Detector.update`, one
value or a NumPy micro-batch (with optional event times), then read
:attr:`~Detector.alarm` (with hysteresis), :attr:`~Detector.score` (in [0, 1],
higher is more anomalous) and :attr:`~Detector.changes` (where the alarm rose or
cleared in that batch). No Kafka, no Faust, no I/O.

Two families extend it: the metric detectors
(:class:`detectors.metric.base.MetricDetector`: one numeric series, judged point
by point) and the drift detectors (:class:`detectors.drift.base.DriftDetector`:
recent values against a reference captured first).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
import numpy.typing as npt

from detectors.params import DetectorParams
from fireline.errors import DetectorError

P = TypeVar("P", bound=DetectorParams)

FloatArray = npt.NDArray[np.float64]
Timestamps = float | Sequence[float] | npt.NDArray[Any]

#: Finite values beyond this magnitude are judged as if at it: then no detector's
#: sums, squares or differences of values can overflow (1e150 squared is 1e300),
#: and no real metric or feature comes near it.
MAX_MAGNITUDE = 1e150


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
    """A streaming detector: one parameter model, one ``update``, an alarm and a score.

    Its parameters are one frozen :attr:`Params` model (see
    :mod:`detectors.params`): ``Detector(params)`` shares the instance,
    ``Detector(window=50)`` validates the keywords against the defaults, and a bad
    value raises a DetectorError naming the parameter and the rule. A subclass
    derives what its parameters imply in :meth:`_prepare` and its state in
    :meth:`_reset_state`.
    """

    #: The model that declares this detector's parameters.
    Params: ClassVar[type[DetectorParams]]
    #: What update() takes: "numeric" (floats), "binary" (0/1) or "categorical" (strings).
    input_kind: ClassVar[str] = "numeric"

    def __init__(self, params: P | None = None, /, **overrides: Any) -> None:
        self.params = cast(P, self.Params.of(params, overrides, type(self).__name__))
        self._prepare()
        self.reset()

    def _prepare(self) -> None:
        """Derive what the parameters imply (fixed for the detector's life)."""

    def reset(self) -> None:
        """Forget everything learned, as if just constructed."""
        self._alarm = False
        self._score = 0.0
        self._seen = 0
        self._changes: list[AlarmChange] = []
        self._reset_state()

    @abc.abstractmethod
    def _reset_state(self) -> None:
        """Forget the subclass's own state (the root resets alarm, score and counts)."""

    @abc.abstractmethod
    def update(self, values: Any, timestamps: Timestamps | None = None) -> Self:
        """Learn from one value or a micro-batch (list or 1-D array), in order.

        Invalid values (NaN, infinities; what else depends on the family) are
        skipped. ``timestamps`` (epoch seconds, one per value) are optional and
        only read by detectors that judge by event time.
        """

    @property
    def alarm(self) -> bool:
        """Whether the detector currently signals an anomaly."""
        return self._alarm

    @property
    def score(self) -> float:
        """How anomalous the latest value (or check) is, in [0, 1]."""
        return self._score

    @property
    def seen(self) -> int:
        """Valid values learned since construction or the last reset."""
        return self._seen

    @property
    def changes(self) -> list[AlarmChange]:
        """Every rise and clear of the alarm during the last update, in order.

        A micro-batch can hold a whole short spike; reading only :attr:`alarm`
        afterwards would miss it, and when it happened. Each update starts a new
        list and never touches it after returning, so it is not copied here.
        """
        return self._changes

    @classmethod
    def conformance_params(cls) -> Iterator[dict[str, Any]]:
        """Parameters the conformance tests build this detector with (river's idea).

        The generic checks feed each a stream of its input kind with a change in
        it: a detector that needs other parameters to show its alarm there says so.
        """
        yield {}

    def __repr__(self) -> str:
        return self.Params.render(type(self).__name__, self.params)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "params" not in state:  # pickled by an older fireline: start afresh
            raise DetectorError(f"{type(self).__name__}: a checkpoint without parameters")
        self.__dict__.update(state)


def check_timestamps(timestamps: Timestamps, count: int) -> list[float]:
    """The event times of a batch of ``count`` values, checked: one each, finite."""
    times = as_floats(timestamps)
    if len(times) != count:
        raise DetectorError(
            f"expected one timestamp per value, got {len(times)} for {count} values"
        )
    total = sum(times)  # finite when every time is (the common case, without a test per time)
    if total - total != 0.0 and not all(map(math.isfinite, times)):
        raise DetectorError("timestamps must be finite epoch seconds")
    return times


def bounded(values: FloatArray) -> FloatArray:
    """``values`` with each finite one beyond :data:`MAX_MAGNITUDE` brought to it (NaN, inf kept)."""
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) > MAX_MAGNITUDE
    beyond &= np.isfinite(values)
    if not beyond.any():
        return values
    return np.where(beyond, np.copysign(MAX_MAGNITUDE, values), values)


_SCALARS = (int, float, np.number)  # one value, not a batch (a tuple: checked on every update)


def as_floats(values: float | Sequence[float] | npt.NDArray[Any]) -> list[float]:
    """One value or a 1-D batch as plain floats (NaN kept)."""
    if type(values) is list:  # the metric pipeline's batches: the common case first
        return list(map(float, values))
    if isinstance(values, _SCALARS):
        return [float(values)]
    if isinstance(values, np.ndarray):
        if values.ndim > 1:
            raise DetectorError(f"expected a value or a 1-D batch, got shape {values.shape}")
        return values.astype(np.float64, copy=False).ravel().tolist()
    return list(map(float, values))

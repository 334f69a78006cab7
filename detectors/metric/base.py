"""The base of the metric detectors: one numeric series, judged point by point."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Self

from detectors.base import (
    MAX_MAGNITUDE,
    AlarmChange,
    Detector,
    P,
    Timestamps,
    as_floats,
    check_timestamps,
)


class MetricDetector(Detector[P]):
    """A detector of one metric series that judges every finite value as it comes.

    :meth:`update` skips NaN and infinite values (a gap in a metric is not a
    spike) and hands the rest to :meth:`_update_batch`; a subclass calls
    :meth:`_note_change` where the alarm rises or clears, and reads the event
    times of the kept values from ``self._batch_times`` if it judges by them.
    """

    def reset(self) -> None:
        """Forget everything learned, as if just constructed."""
        self._cursor = -1  # position of the point being learned within the current update
        # Event times (epoch seconds) of the finite values of the current update, when
        # the caller gave them; only during _update_batch (never part of the state).
        self._batch_times: list[float] | None = None
        super().reset()

    def update(self, values: Any, timestamps: Timestamps | None = None) -> Self:
        """Learn from one value or a micro-batch (list or 1-D array), in order.

        NaN and infinite values are skipped: a gap in a metric is not a spike;
        finite values beyond ``MAX_MAGNITUDE`` (1e150) are judged as if at it.
        ``timestamps`` (epoch seconds, one per value) are optional; detectors that
        use event time (seasonal baselines) read those of the kept values; the
        others ignore them.
        """
        batch, finite, times = self._admit(values, timestamps)
        if finite:
            self._learn_admitted(batch, finite, times, self._update_batch)
        return self

    @classmethod
    def update_many(
        cls,
        detectors: Sequence[Self],
        values: Sequence[Any],
        timestamps: Sequence[Timestamps | None],
    ) -> None:
        """``detector.update(values, timestamps)`` for each, in order, each its own micro-batch.

        A detector class that can learn many series' micro-batches together (see
        :meth:`MetricEnsemble.update_many`) overrides this, with the same results.
        """
        for detector, batch, times in zip(detectors, values, timestamps, strict=True):
            detector.update(batch, times)

    def _admit(
        self, values: Any, timestamps: Timestamps | None
    ) -> tuple[list[float], list[float], list[float] | None]:
        """The batch as floats, its finite values (clamped) and their times; changes cleared."""
        batch = as_floats(values)
        times = None if timestamps is None else check_timestamps(timestamps, len(batch))
        # Plain floats, not NumPy scalars: the per-point bookkeeping of small
        # micro-batches (a few points per series) is faster in Python.
        total = sum(batch)
        # A finite sum means every value is finite (a NaN or an infinity would make it
        # NaN or infinite): the common case, without a per-value test.
        finite = batch if total - total == 0.0 else [v for v in batch if math.isfinite(v)]
        if finite and (max(finite) > MAX_MAGNITUDE or min(finite) < -MAX_MAGNITUDE):
            finite = [min(max(v, -MAX_MAGNITUDE), MAX_MAGNITUDE) for v in finite]
        self._changes = []
        if times is not None and len(finite) != len(batch):
            times = [t for t, v in zip(times, batch, strict=True) if math.isfinite(v)]
        return batch, finite, times

    def _learn_admitted(
        self,
        batch: list[float],
        finite: list[float],
        times: list[float] | None,
        update: Callable[[list[float]], None],
    ) -> None:
        """Learn the finite values of ``batch`` through ``update`` (an ``_update_batch``)."""
        self._cursor = -1
        self._batch_times = times
        try:
            update(finite)
        finally:
            self._batch_times = None
        self._seen += len(finite)
        if len(finite) != len(batch):  # report positions in the caller's batch
            kept = [i for i, v in enumerate(batch) if math.isfinite(v)]
            self._changes = [replace(c, index=kept[c.index]) for c in self._changes]

    def _note_change(
        self, raised: bool, observed: float, baseline: float, adapted: bool = False
    ) -> None:
        """Subclasses call this when the alarm rises or clears at the current point."""
        self._changes.append(
            AlarmChange(self._cursor, raised, observed, baseline, self._score, adapted)
        )

    @abc.abstractmethod
    def _update_batch(self, batch: list[float]) -> None:
        """Learn from a non-empty batch of finite values, oldest first."""

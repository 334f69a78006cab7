"""LabelJoin: late labels matched to their predictions, with a bounded wait."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from fireline.errors import ConfigError, DetectorError

# The columns of a snapshot, one entry per waiting prediction, oldest first.
SNAPSHOT_COLUMNS = ("ids", "versions", "predictions", "timestamps")


@dataclass(frozen=True, slots=True)
class Pending:
    """What an outcome needs of a prediction that waits for its label."""

    model_version: str
    prediction: float | str | None
    timestamp: float


class LabelJoin:
    """Predictions of one model waiting for labels, by ``prediction_id``.

    Bounded both ways: at most ``max_pending`` predictions wait (the oldest is
    dropped first) and none longer than ``max_wait_s`` of event time. Dropped and
    unmatched counts are kept for the monitor to report.

    The waiting predictions can be saved as plain columns (:meth:`snapshots`) and
    read back (:meth:`restore`), so labels arriving after a restart still find the
    predictions made before it.
    """

    def __init__(self, max_pending: int = 100_000, max_wait_s: float = 7 * 86_400.0) -> None:
        if max_pending < 1:
            raise ConfigError(f"max_pending must be at least 1; got {max_pending}.")
        if not max_wait_s > 0:
            raise ConfigError(f"max_wait_s must be positive; got {max_wait_s}.")
        self.max_pending = max_pending
        self.max_wait_s = max_wait_s
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self.expired = 0
        self.unmatched = 0
        self.matched = 0

    def add(self, prediction_id: str, pending: Pending) -> None:
        """Let a prediction wait for its label."""
        self._pending[prediction_id] = pending
        self._pending.move_to_end(prediction_id)
        if len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.expired += 1

    def add_many(self, prediction_ids: list[str], pending: list[Pending]) -> None:
        """:meth:`add` of each in turn (in one call when none waits already or is dropped)."""
        waiting = self._pending
        if (
            len(waiting) + len(prediction_ids) <= self.max_pending
            and waiting.keys().isdisjoint(prediction_ids)
            and len(set(prediction_ids)) == len(prediction_ids)
        ):  # each goes last and nothing is dropped, as one by one
            waiting.update(zip(prediction_ids, pending, strict=True))
            return
        for prediction_id, one in zip(prediction_ids, pending, strict=True):
            self.add(prediction_id, one)

    def match(self, prediction_id: str, now: float) -> Pending | None:
        """The waiting prediction for a label arriving at ``now``, if still there."""
        self._expire(now)
        found = self._pending.pop(prediction_id, None)
        if found is None:
            self.unmatched += 1
        else:
            self.matched += 1
        return found

    def take_counts(self) -> tuple[int, int, int]:
        """``(matched, unmatched, expired)`` since the last call, then zero again."""
        counts = (self.matched, self.unmatched, self.expired)
        self.matched = self.unmatched = self.expired = 0
        return counts

    def snapshots(self, size: int) -> Iterator[dict[str, list[object]]]:
        """The waiting predictions as plain columns, ``size`` entries per snapshot at most.

        Columns (:data:`SNAPSHOT_COLUMNS`) of strings and numbers only, so any state
        format can keep them. An empty join is one empty snapshot.
        """
        if size < 1:
            raise ConfigError(f"snapshot size must be at least 1; got {size}.")
        entries = iter(self._pending.items())
        first = True
        while chunk := list(islice(entries, size)):
            first = False
            yield {
                "ids": [i for i, _ in chunk],
                "versions": [p.model_version for _, p in chunk],
                "predictions": [p.prediction for _, p in chunk],
                "timestamps": [p.timestamp for _, p in chunk],
            }
        if first:
            yield {column: [] for column in SNAPSHOT_COLUMNS}

    def restore(self, snapshot: Mapping[str, object]) -> int:
        """Add the predictions of one snapshot, oldest first; return how many.

        Raises DetectorError naming what is wrong when ``snapshot`` is not one
        :meth:`snapshots` made (missing column, lengths or types that do not fit).
        """
        columns: list[list[object]] = []
        for name in SNAPSHOT_COLUMNS:
            column = snapshot.get(name)
            if not isinstance(column, list | tuple):
                raise DetectorError(f"label join snapshot has no list {name!r}")
            columns.append(list(column))
        ids, versions, predictions, timestamps = columns
        if not len(ids) == len(versions) == len(predictions) == len(timestamps):
            raise DetectorError("label join snapshot columns differ in length")
        for row, (id_, version, prediction, ts) in enumerate(
            zip(ids, versions, predictions, timestamps, strict=True)
        ):
            if not (
                isinstance(id_, str)
                and isinstance(version, str)
                and (prediction is None or isinstance(prediction, str | int | float))
                and isinstance(ts, int | float)
                and not isinstance(ts, bool)
            ):
                raise DetectorError(f"label join snapshot row {row} has a wrong type")
            self.add(id_, Pending(version, prediction, float(ts)))
        return len(ids)

    def _expire(self, now: float) -> None:
        horizon = now - self.max_wait_s
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.timestamp >= horizon:
                break
            self._pending.popitem(last=False)
            self.expired += 1

    def __len__(self) -> int:
        return len(self._pending)

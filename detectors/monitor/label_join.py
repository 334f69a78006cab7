"""LabelJoin: late labels matched to their predictions, with a bounded wait."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import partial
from itertools import repeat
from typing import NamedTuple

from fireline.errors import ConfigError, DetectorError

# The columns of a snapshot, one entry per waiting prediction, oldest first.
SNAPSHOT_COLUMNS = ("ids", "versions", "predictions", "timestamps")


class Pending(NamedTuple):
    """What an outcome needs of a prediction that waits for its label.

    A named tuple, not a frozen dataclass: one is made for every prediction, and
    :func:`pending` makes a batch of them in C (a frozen dataclass's ``__init__``
    cost ~1.5 µs each, ~1% of the worker's event loop).
    """

    model_version: str
    prediction: float | str | None
    timestamp: float


def pending(
    version: str, predictions: Iterable[float | str | None], timestamps: Iterable[float]
) -> list[Pending]:
    """The Pending of each prediction of one version (its prediction and timestamp)."""
    return list(map(_new_pending, zip(repeat(version), predictions, timestamps)))


_new_pending = partial(tuple.__new__, Pending)


# Predictions per segment: the unit a label join is checkpointed in (a segment is
# far below the checkpoint size limit however many predictions wait).
SEGMENT_SIZE = 10_000


class LabelJoin:
    """Predictions of one model waiting for labels, by ``prediction_id``.

    Bounded both ways: at most ``max_pending`` predictions wait (the oldest is
    dropped first) and none longer than ``max_wait_s`` of event time. Dropped and
    unmatched counts are kept for the monitor to report.

    The waiting predictions are kept in *segments* by arrival: the n-th prediction
    ever added goes to segment ``n // segment_size``. Only the newest segment grows;
    a label or an expiry removes from one segment. A checkpoint rewrites only the
    segments changed since the last one (:meth:`take_changed`), as plain columns
    (:meth:`segment`), and :meth:`restore` puts them back under their numbers, so
    labels arriving after a restart still find the predictions made before it.
    Rewriting the whole join instead cost O(waiting) every checkpoint: 100,000
    waiting predictions were re-encoded every ``checkpoint_s``.
    """

    def __init__(
        self,
        max_pending: int = 100_000,
        max_wait_s: float = 7 * 86_400.0,
        segment_size: int = SEGMENT_SIZE,
    ) -> None:
        if max_pending < 1:
            raise ConfigError(f"max_pending must be at least 1; got {max_pending}.")
        if not max_wait_s > 0:
            raise ConfigError(f"max_wait_s must be positive; got {max_wait_s}.")
        if segment_size < 1:
            raise ConfigError(f"segment_size must be at least 1; got {segment_size}.")
        self.max_pending = max_pending
        self.max_wait_s = max_wait_s
        self.segment_size = segment_size
        # Oldest segment first; each in arrival order (OrderedDict: popping the
        # oldest is O(1), where a dict's first key is found past its deleted slots).
        self._segments: dict[int, OrderedDict[str, Pending]] = {}
        self._segment_of: dict[str, int] = {}
        self._arrivals = 0  # predictions ever added: the next one's place
        self._changed: set[int] = set()
        self.expired = 0
        self.unmatched = 0
        self.matched = 0

    def add(self, prediction_id: str, pending: Pending) -> None:
        """Let a prediction wait for its label (a waiting one of that id is replaced)."""
        old = self._segment_of.get(prediction_id)
        if old is not None:
            self._remove(old, prediction_id)
        number = self._arrivals // self.segment_size
        self._arrivals += 1
        segment = self._segments.get(number)
        if segment is None:
            segment = self._segments[number] = OrderedDict()
        segment[prediction_id] = pending
        self._segment_of[prediction_id] = number
        self._changed.add(number)
        if len(self._segment_of) > self.max_pending:
            self._pop_oldest()
            self.expired += 1

    def add_many(self, prediction_ids: list[str], pending: list[Pending]) -> None:
        """:meth:`add` of each in turn (a segment at a time when none waits already or is dropped)."""
        if not (
            len(self._segment_of) + len(prediction_ids) <= self.max_pending
            and self._segment_of.keys().isdisjoint(prediction_ids)
            and len(set(prediction_ids)) == len(prediction_ids)
        ):
            for prediction_id, one in zip(prediction_ids, pending, strict=True):
                self.add(prediction_id, one)
            return
        # Each goes last and nothing is dropped, as one by one.
        size, start = self.segment_size, 0
        while start < len(prediction_ids):
            number = self._arrivals // size
            take = min(len(prediction_ids) - start, size - self._arrivals % size)
            ids = prediction_ids[start : start + take]
            segment = self._segments.get(number)
            if segment is None:
                segment = self._segments[number] = OrderedDict()
            segment.update(zip(ids, pending[start : start + take], strict=True))
            self._segment_of.update(dict.fromkeys(ids, number))
            self._changed.add(number)
            self._arrivals += take
            start += take

    def match(self, prediction_id: str, now: float) -> Pending | None:
        """The waiting prediction for a label arriving at ``now``, if still there."""
        self._expire(now)
        number = self._segment_of.get(prediction_id)
        if number is None:
            self.unmatched += 1
            return None
        self.matched += 1
        return self._remove(number, prediction_id)

    def take_counts(self) -> tuple[int, int, int]:
        """``(matched, unmatched, expired)`` since the last call, then zero again."""
        counts = (self.matched, self.unmatched, self.expired)
        self.matched = self.unmatched = self.expired = 0
        return counts

    def items(self) -> list[tuple[str, Pending]]:
        """The waiting predictions, oldest first."""
        return [item for segment in self._segments.values() for item in segment.items()]

    def segments(self) -> list[int]:
        """The numbers of the segments holding waiting predictions, oldest first."""
        return list(self._segments)

    def take_changed(self) -> set[int]:
        """The segments changed since the last call (some may be gone: emptied)."""
        changed, self._changed = self._changed, set()
        return changed

    def segment(self, number: int) -> dict[str, list[object]] | None:
        """A segment's waiting predictions as plain columns, oldest first; None if it is gone.

        Columns (:data:`SNAPSHOT_COLUMNS`) of strings and numbers only, so any state
        format can keep them.
        """
        segment = self._segments.get(number)
        if segment is None:
            return None
        pending = list(segment.values())
        return {
            "ids": list(segment),
            "versions": [p.model_version for p in pending],
            "predictions": [p.prediction for p in pending],
            "timestamps": [p.timestamp for p in pending],
        }

    def restore(self, snapshot: Mapping[str, object], segment: int | None = None) -> int:
        """Add the predictions of one snapshot, oldest first; return how many.

        ``segment``: the number it was saved as (:meth:`segment`); it must be newer
        than every segment held. None: they are added as new arrivals.

        Raises DetectorError naming what is wrong when ``snapshot`` is not one
        :meth:`segment` made (missing column, lengths or types that do not fit).
        """
        rows = _rows(snapshot)
        if len(rows) > self.segment_size and segment is not None:
            raise DetectorError(
                f"label join segment {segment} holds {len(rows)} predictions, "
                f"over the segment size {self.segment_size}"
            )
        if segment is not None:
            if segment < 0 or segment * self.segment_size < self._arrivals:
                raise DetectorError(
                    f"label join segment {segment} is not newer than the segments held"
                )
            self._arrivals = segment * self.segment_size
        for id_, pending in rows:
            self.add(id_, pending)
        if segment is not None:  # its own number: a checkpoint need not rewrite it
            self._changed.discard(segment)
            self._arrivals = (segment + 1) * self.segment_size
        return len(rows)

    def _remove(self, number: int, prediction_id: str) -> Pending:
        segment = self._segments[number]
        pending = segment.pop(prediction_id)
        del self._segment_of[prediction_id]
        if not segment:
            del self._segments[number]
        self._changed.add(number)
        return pending

    def _pop_oldest(self) -> None:
        number, segment = next(iter(self._segments.items()))
        prediction_id, _ = segment.popitem(last=False)
        del self._segment_of[prediction_id]
        if not segment:
            del self._segments[number]
        self._changed.add(number)

    def _expire(self, now: float) -> None:
        horizon = now - self.max_wait_s
        while self._segments:
            segment = next(iter(self._segments.values()))
            if next(iter(segment.values())).timestamp >= horizon:
                break
            self._pop_oldest()
            self.expired += 1

    def __len__(self) -> int:
        return len(self._segment_of)


def _rows(snapshot: Mapping[str, object]) -> list[tuple[str, Pending]]:
    """The (id, Pending) rows of a snapshot; DetectorError naming what does not fit."""
    columns: list[list[object]] = []
    for name in SNAPSHOT_COLUMNS:
        column = snapshot.get(name)
        if not isinstance(column, list | tuple):
            raise DetectorError(f"label join snapshot has no list {name!r}")
        columns.append(list(column))
    ids, versions, predictions, timestamps = columns
    if not len(ids) == len(versions) == len(predictions) == len(timestamps):
        raise DetectorError("label join snapshot columns differ in length")
    rows: list[tuple[str, Pending]] = []
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
        rows.append((id_, Pending(version, prediction, float(ts))))
    return rows

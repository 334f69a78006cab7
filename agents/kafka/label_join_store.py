"""Label joins checkpointed next to the detectors, so labels outlive restarts and rebalances.

A model's waiting predictions (:class:`~detectors.monitor.label_join.LabelJoin`)
are saved through the :class:`~agents.kafka.detector_store.DetectorStore`, in the
partition of the model's events, as plain columns, one record per segment of at
most ``SEGMENT_SIZE`` predictions (``labels|<model>|s<n>``), far below the
checkpoint size limit however many predictions wait. A checkpoint writes only
the segments changed since the last one, deletes the emptied ones (a tombstone:
the compacted changelog keeps no key nobody reads), and then the head
(``labels|<model>``), which lists the live segments: a reader never sees a
segment number whose record is not written. A join saved whole in parts by an
earlier release (head ``{"parts": n}``, ``labels|<model>|<n>``) is read, and its
parts are deleted at its next checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agents.kafka.detector_store import DetectorStore
from detectors.monitor.label_join import LabelJoin
from fireline.errors import DetectorError

log = logging.getLogger(__name__)


class LabelJoinStore:
    """Saves and restores label joins through a detector store."""

    def __init__(self, store: DetectorStore) -> None:
        self.store = store
        self._legacy_parts: dict[str, int] = {}  # model → parts of an earlier release's save

    def save(self, joins: Mapping[str, LabelJoin], dirty: Mapping[str, int]) -> int:
        """Checkpoint the joins of the ``dirty`` models (model → partition); return how many."""
        objects: dict[str, object] = {}
        where: dict[str, int] = {}
        gone: dict[str, int] = {}
        models = 0
        for model, partition in dirty.items():
            join = joins.get(model)
            if join is None:
                continue
            for number in sorted(join.take_changed()):
                segment = join.segment(number)
                if segment is None:
                    gone[_segment_key(model, number)] = partition
                else:
                    objects[_segment_key(model, number)] = segment
                    where[_segment_key(model, number)] = partition
            for number in range(self._legacy_parts.pop(model, 0)):
                gone[_part_key(model, number)] = partition
            # The head last: a reader never sees a segment listed whose record is not written.
            objects[_head_key(model)] = {"segments": join.segments()}
            where[_head_key(model)] = partition
            models += 1
        self.store.delete(gone)
        self.store.save(objects, where)
        return models

    def load(self, model: str, max_pending: int, max_wait_s: float) -> LabelJoin | None:
        """The model's checkpointed join, if one is kept; a bad segment is skipped with a warning."""
        head = self.store.load(_head_key(model))
        if not isinstance(head, dict):
            return None
        join = LabelJoin(max_pending, max_wait_s)
        segments = head.get("segments")
        parts = head.get("parts")
        if isinstance(segments, list) and all(isinstance(n, int) for n in segments):
            for number in sorted(segments):
                self._restore(join, model, _segment_key(model, number), number)
        elif isinstance(parts, int):  # saved whole, in parts, by an earlier release
            for number in range(parts):
                self._restore(join, model, _part_key(model, number), None)
            self._legacy_parts[model] = parts
        else:
            return None
        return join

    def _restore(self, join: LabelJoin, model: str, key: str, number: int | None) -> None:
        snapshot = self.store.load(key)
        if snapshot is None and number is not None:
            return  # emptied and deleted before the head listing it was replaced
        try:
            join.restore(snapshot if isinstance(snapshot, dict) else {}, number)
        except DetectorError as exc:
            log.warning(
                "label join of %s: %s unreadable (%s); its labels will not be scored",
                model,
                key,
                exc,
            )


def _head_key(model: str) -> str:
    return f"labels|{model}"


def _segment_key(model: str, number: int) -> str:
    return f"labels|{model}|s{number}"


def _part_key(model: str, number: int) -> str:
    return f"labels|{model}|{number}"

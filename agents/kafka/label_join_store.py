"""Label joins checkpointed next to the detectors, so labels outlive restarts and rebalances.

A model's waiting predictions (:class:`~detectors.monitor.label_join.LabelJoin`)
are saved through the :class:`~agents.kafka.detector_store.DetectorStore`, in the
partition of the model's events, as plain columns cut into parts of at most
``part_size`` predictions: one part stays far below the checkpoint size limit
however many predictions wait (``labels|<model>`` names how many parts there are,
``labels|<model>|<n>`` holds each). A join is saved whole when it changed since
the last checkpoint; parts left over from a larger join are never read again
(at most ``max_pending / part_size`` of them per model).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agents.kafka.detector_store import DetectorStore
from detectors.monitor.label_join import LabelJoin
from fireline.errors import DetectorError

log = logging.getLogger(__name__)

PART_SIZE = 10_000


class LabelJoinStore:
    """Saves and restores label joins through a detector store."""

    def __init__(self, store: DetectorStore, part_size: int = PART_SIZE) -> None:
        self.store = store
        self.part_size = part_size

    def save(self, joins: Mapping[str, LabelJoin], dirty: Mapping[str, int]) -> int:
        """Checkpoint the joins of the ``dirty`` models (model → partition); return how many."""
        objects: dict[str, object] = {}
        where: dict[str, int] = {}
        models = 0
        for model, partition in dirty.items():
            join = joins.get(model)
            if join is None:
                continue
            parts = list(join.snapshots(self.part_size))
            for number, part in enumerate(parts):
                objects[_part_key(model, number)] = part
                where[_part_key(model, number)] = partition
            # The head last: a reader never sees a part count whose parts are not written.
            objects[_head_key(model)] = {"parts": len(parts)}
            where[_head_key(model)] = partition
            models += 1
        self.store.save(objects, where)
        return models

    def load(self, model: str, max_pending: int, max_wait_s: float) -> LabelJoin | None:
        """The model's checkpointed join, if one is kept; a bad part is skipped with a warning."""
        head = self.store.load(_head_key(model))
        if not isinstance(head, dict) or not isinstance(head.get("parts"), int):
            return None
        join = LabelJoin(max_pending, max_wait_s)
        for number in range(head["parts"]):
            part = self.store.load(_part_key(model, number))
            try:
                join.restore(part if isinstance(part, dict) else {})
            except DetectorError as exc:
                log.warning(
                    "label join of %s: part %d unreadable (%s); its labels will not be scored",
                    model,
                    number,
                    exc,
                )
        return join


def _head_key(model: str) -> str:
    return f"labels|{model}"


def _part_key(model: str, number: int) -> str:
    return f"labels|{model}|{number}"

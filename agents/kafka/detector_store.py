"""Detector state checkpoints in a Faust table, so a restarted worker resumes its baselines.

Each series' metric detector and each model version's prediction-log monitor is
pickled (and compressed) into the ``<app_id>-detector-state`` table (changelog
topic ``<app_id>-detector-state-changelog``) in the partition of the events it
learns from. Writing every detector after every micro-batch would cost more
than detecting, so the worker checkpoints what changed every
``detection.checkpoint_s``, when partitions are revoked and at shutdown; a
crash loses at most that much learning, never an incident (incident state has
its own table). A checkpoint larger than ``max_bytes`` is skipped with a
warning: Kafka refuses messages over about 1 MB by default.

The changelog holds pickles: only fireline may write to it (Kafka ACLs).
"""

from __future__ import annotations

import logging
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = 900_000


class DetectorStore:
    """Loads and saves picklable detector state through a Faust table (``bytes`` values)."""

    def __init__(self, table: Any, max_bytes: int = MAX_CHECKPOINT_BYTES) -> None:
        self.table = table
        self.max_bytes = max_bytes
        self._too_big: set[str] = set()  # warned about once each

    def load(self, key: str) -> object | None:
        """The checkpointed object under ``key``, if the table holds a readable one."""
        raw = self.table.data.get(key.encode())
        if raw is None:
            return None
        try:
            state = pickle.loads(zlib.decompress(raw))
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint means a fresh detector
            log.warning("cannot restore the state of %s (%r); starting afresh", key, exc)
            return None
        return state

    def save(self, objects: Mapping[str, object], dirty: Mapping[str, int]) -> int:
        """Checkpoint the ``dirty`` keys (key → partition) of ``objects``; return how many."""
        saved = 0
        for key, partition in dirty.items():
            state = objects.get(key)
            if state is None:
                continue
            raw = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
            if len(raw) > self.max_bytes:
                if key not in self._too_big:
                    self._too_big.add(key)
                    log.warning(
                        "state of %s is %d bytes, over the %d-byte checkpoint limit: not kept",
                        key,
                        len(raw),
                        self.max_bytes,
                    )
                continue
            self.table.data[key.encode()] = raw
            self.table.send_changelog(partition, key.encode(), raw)
            saved += 1
        return saved

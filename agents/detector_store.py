"""Detector state checkpoints in a Faust table, so a restarted worker resumes its baselines.

Each series' detector is pickled into the ``<app_id>-detector-state`` table
(changelog topic ``<app_id>-detector-state-changelog``) in the partition of the
metric events it learns from. Writing every detector after every micro-batch
would cost more than detecting, so the worker checkpoints the series that
changed every ``detection.checkpoint_s``, when partitions are revoked and at
shutdown; a crash loses at most that much learning, never an incident (incident
state has its own table).

The changelog holds pickles: only fireline may write to it (Kafka ACLs).
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from detectors import Detector

log = logging.getLogger(__name__)


class DetectorStore:
    """Loads and saves per-series detectors through a Faust table (``bytes`` → pickle)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def load(self, series: str) -> Detector | None:
        """The checkpointed detector of ``series``, if the table holds one."""
        raw = self.table.data.get(series.encode())
        if raw is None:
            return None
        try:
            detector = pickle.loads(raw)
        except Exception as exc:  # noqa: BLE001 - a bad checkpoint means a fresh detector
            log.warning("cannot restore the detector of %s (%r); starting afresh", series, exc)
            return None
        return detector if isinstance(detector, Detector) else None

    def save(self, detectors: dict[str, Detector], dirty: dict[str, int]) -> int:
        """Checkpoint the ``dirty`` series (series → partition); return how many."""
        saved = 0
        for series, partition in dirty.items():
            detector = detectors.get(series)
            if detector is None:
                continue
            key, raw = series.encode(), pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)
            self.table.data[key] = raw
            self.table.send_changelog(partition, key, raw)
            saved += 1
        return saved

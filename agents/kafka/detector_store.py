"""Detector state checkpoints in a Faust table, so a restarted worker resumes its baselines.

Each series' metric detector and each model version's prediction-log monitor is
saved in fireline's state format (:mod:`agents.kafka.state_codec`: versioned,
compressed msgpack data that names only fireline's own classes and never runs
code) into the ``<app_id>-detector-state`` table (changelog topic
``<app_id>-detector-state-changelog``) in the partition of the events it learns
from. Writing every detector after every micro-batch would cost more than
detecting, so the worker checkpoints what changed every
``detection.checkpoint_s``, when partitions are revoked and at shutdown; a crash
loses at most that much learning, never an incident (incident state has its own
table). The worker's store is *deferred*: its changelog records wait in
:attr:`DetectorStore.outbox` and the checkpoint sends them straight to the
producer and awaits them (agents/service/checkpoints.py), instead of queueing
thousands in Faust's producer buffer, which every per-event agent waits on
(``wait_until_ebb``) and every acknowledged table write queues behind. A
checkpoint larger than ``max_bytes`` is skipped with a warning: Kafka refuses
messages over about 1 MB by default.

A record that cannot be read back (another format, such as an older release's
pickle, another format version, a class this release does not know, or bytes
written by someone else) is dropped with a warning and counted: that detector
re-warms, as a new one would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

from prometheus_client import Counter

from agents.kafka import state_codec
from fireline.errors import StateFormatError

log = logging.getLogger(__name__)

MAX_CHECKPOINT_BYTES = 900_000
# Written after a checkpoint's records are acknowledged, in a batch of its own: the
# embedded broker (Tansu) reports a partition's end as its last batch's base offset + 1,
# so a table restored from it would miss every record of that batch after the first.
SEAL_KEY = b"~seal"


class ChangelogRecord(NamedTuple):
    """A checkpoint for the table's changelog topic, in the partition of its events."""

    partition: int
    key: bytes
    value: bytes | None  # None: a tombstone (compaction drops the key)


class DetectorStore:
    """Loads and saves detector state through a Faust table (``bytes`` values)."""

    def __init__(
        self,
        table: Any,
        max_bytes: int = MAX_CHECKPOINT_BYTES,
        unreadable: Counter | None = None,
        *,
        deferred: bool = False,
    ) -> None:
        """``unreadable`` counts the records dropped because they could not be read back.

        ``deferred``: a saved checkpoint goes into the table at once and its
        changelog record into :attr:`outbox`, for the caller to send (and await)
        with :meth:`take_outbox`; otherwise it is queued with the table's
        ``send_changelog``.
        """
        self.table = table
        self.max_bytes = max_bytes
        self.unreadable = unreadable
        self.deferred = deferred
        self.outbox: list[ChangelogRecord] = []  # in save order, so the last write wins
        self._not_kept: set[str] = set()  # warned about once each
        self.unsealed: set[int] = set()  # partitions written since the last seal

    def load(self, key: str) -> object | None:
        """The checkpointed object under ``key``, if the table holds a readable one."""
        raw = self.table.data.get(key.encode())
        if raw is None:
            return None
        try:
            return state_codec.decode(raw)
        except StateFormatError as exc:
            log.warning("unreadable state for %s, re-warming: %s", key, exc)
            if self.unreadable is not None:
                self.unreadable.inc()
            return None

    def save(self, objects: Mapping[str, object], dirty: Mapping[str, int]) -> int:
        """Checkpoint the ``dirty`` keys (key → partition) of ``objects``; return how many."""
        saved = 0
        for key, partition in dirty.items():
            state = objects.get(key)
            if state is None:
                continue
            try:
                raw = state_codec.encode(state)
            except StateFormatError as exc:
                self._warn_once(key, "state of %s cannot be saved (%s): not kept", key, exc)
                continue
            if len(raw) > self.max_bytes:
                self._warn_once(
                    key,
                    "state of %s is %d bytes, over the %d-byte checkpoint limit: not kept",
                    key,
                    len(raw),
                    self.max_bytes,
                )
                continue
            self.table.data[key.encode()] = raw
            if self.deferred:
                self.outbox.append(ChangelogRecord(partition, key.encode(), raw))
            else:
                self.table.send_changelog(partition, key.encode(), raw)
            self.unsealed.add(partition)
            saved += 1
        return saved

    def delete(self, keys: Mapping[str, int]) -> int:
        """Delete each key (key → partition) from the table and its changelog; return how many."""
        for key, partition in keys.items():
            raw = key.encode()
            self.table.data.pop(raw, None)
            if self.deferred:
                self.outbox.append(ChangelogRecord(partition, raw, None))
            else:
                self.table.send_changelog(partition, raw, None, value_serializer="raw")
            self.unsealed.add(partition)
        return len(keys)

    def take_outbox(self) -> list[ChangelogRecord]:
        """The changelog records saved since the last call, oldest first (deferred stores)."""
        taken, self.outbox = self.outbox, []
        return taken

    def seal(self) -> int:
        """Write the seal record to each partition written since the last seal; return how many.

        Call it once the checkpoint's records are acknowledged (the outbox sent and
        the producer flushed), so the seal goes out in a batch of its own.
        """
        partitions = sorted(self.unsealed)
        for partition in partitions:
            self.table.data[SEAL_KEY] = b""
            self.table.send_changelog(partition, SEAL_KEY, b"")
        self.unsealed.clear()
        return len(partitions)

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._not_kept:
            self._not_kept.add(key)
            log.warning(message, *args)

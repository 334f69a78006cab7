"""Tombstones for detector checkpoints nobody will reload: the state table stays bounded.

A metric series released from memory keeps its checkpoint in the
``detector-state`` table so it resumes its baseline if it comes back; one that
has not come back for ``detection.state_ttl_s`` is deleted from the table and
from its compacted changelog (a ``None`` value, which Kafka compaction drops).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def tombstone(table: Any, keys: Iterable[tuple[str, int]]) -> int:
    """Delete each (key, partition) from the Faust ``table`` and its changelog; return how many."""
    deleted = 0
    for key, partition in keys:
        raw = key.encode()
        table.data.pop(raw, None)
        if partition >= 0:
            table.send_changelog(partition, raw, None, value_serializer="raw")
        deleted += 1
    return deleted

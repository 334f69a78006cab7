"""A Faust table whose writes are acknowledged by the broker before they return.

A plain ``table[key] = value`` queues its changelog record and returns; a
worker killed right after could lose it. Where a write must be durable before
something acts on the world (a step's intent, a guardrail counter), the engine
awaits :meth:`DurableTable.put`: the value goes into the table and its
changelog record, in the partition of the event being processed, is sent and
acknowledged before ``put`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from fireline.errors import BrokerError


class DurableTable:
    """``get``, ``keys`` and an acknowledged ``put`` over a Faust table of bytes."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key`` in this worker's copy."""
        value = self.table.data.get(key)
        return None if value is None else bytes(value)

    def all_keys(self) -> Iterable[bytes]:
        """Every key this worker holds (its active and standby partitions)."""
        return list(self.table.data.keys())

    async def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` and wait until the broker has its changelog record.

        Only inside an agent's event: the record goes to that event's partition,
        whose owner restores it after a restart or a rebalance.
        """
        await self._send(key, value)

    def put_soon(self, key: bytes, value: bytes) -> None:
        """Store ``value`` and queue its changelog record without waiting for the broker."""
        self._send(key, value)

    def delete_soon(self, key: bytes) -> None:
        """Remove ``key`` and queue its tombstone (compaction then drops it from the changelog)."""
        self._send(key, None)

    def _send(self, key: bytes, value: bytes | None) -> Any:
        event = faust.current_event()
        if event is None:
            raise BrokerError(f"a durable write of {key!r} outside an agent's event")
        partition = event.message.partition
        if value is None:
            self.table.data.pop(key, None)
            return self.table.send_changelog(partition, key, None, value_serializer="raw")
        self.table.data[key] = value
        return self.table.send_changelog(partition, key, value)


class PartitionTable:
    """A Faust table of bytes written to an explicit changelog partition (a desk's StateTable).

    Faust writes a table's changelog record to the partition of the current event;
    a write made outside the consumer's event (an in-process hand-off) names it.
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key`` in this worker's copy."""
        value = self.table.data.get(key)
        return None if value is None else bytes(value)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every (key, value) this worker holds (its active and standby partitions)."""
        return list(self.table.data.items())

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Store ``value`` and queue its changelog record in ``partition``."""
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)

    def delete(self, key: bytes, partition: int) -> None:
        """Drop ``key`` and queue its tombstone in ``partition``."""
        self.table.data.pop(key, None)
        self.table.send_changelog(partition, key, None, value_serializer="raw")


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to: the producer's default (murmur2) partitioner.

    >>> partition_of(b"rollback", 2) in (0, 1)
    True
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions

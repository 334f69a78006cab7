"""Inputs of ``fireline.detections`` applied once each, in offset order, by one of two paths.

The consumer path: the incident agent reads each record of the partitions this
worker owns. The in-process hand-off: a detection (or a lifecycle tick) this
worker has just published (and the broker acknowledged, so it is durable in the
topic) is applied at once,
without waiting for the consumer to fetch it back, **if** this worker owns that
partition and every record before it has been applied. That skips a fetch
round trip and the agent's queue, the bulk of the detection → incident latency.

The guarantees, whichever path applies a record:

- *Order*: per partition, records apply in offset order. A hand-off applies only
  the record right after the last one applied; anything else waits for the
  consumer, which skips what the hand-off applied already.
- *Never twice*: the subject's state stores the offset of the last record folded
  into it, in the same changelog record (``SubjectState.applied``); a record at
  or before it (redelivered after a crash or a rebalance, or handed over first)
  changes nothing.
- *Never lost*: only acknowledged records are handed over, and the consumer's
  committed offset moves past one only after the consumer reached it, by which
  time its state write is queued (Faust flushes the producer before a commit).
- *Events at least once*: a record's incident events are published (and
  acknowledged) before its state is stored, so a crash in between publishes the
  same events again (same ids and revisions) instead of losing them.

One lock serialises both paths. A revocation takes it, so a hand-off in flight
finishes (and its writes are queued) before the partition moves, and forgets
the offsets: the next owner starts from its committed offset and the states.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NamedTuple

from agents.incidents.desk import Applied, IncidentDesk
from fireline.incident import Incident

log = logging.getLogger(__name__)


class Written(NamedTuple):
    """Where the broker put a record this worker published."""

    partition: int
    offset: int


class HandedInput(NamedTuple):
    """A published record of ``fireline.detections``, where it was written."""

    written: Written
    key: bytes | None  # None for a tick
    value: bytes


class IncidentInputs:
    """Applies detections-topic records to the desk through the consumer or a hand-off."""

    def __init__(
        self,
        desk: IncidentDesk,
        publish: Callable[[Sequence[Incident]], Awaitable[None]],
        owns: Callable[[int], bool] = lambda _: False,
    ) -> None:
        """``publish`` sends incident events and waits for the broker.

        ``owns(partition)``: whether this worker owns that partition of the topic
        now (and is not rebalancing).
        """
        self.desk = desk
        self.publish = publish
        self.owns = owns
        self.handed_over = 0  # records applied by a hand-off (for tests and metrics)
        self._next: dict[int, int] = {}  # partition → the next offset to apply
        self._lock = asyncio.Lock()

    async def consumed(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int
    ) -> list[Incident]:
        """A record the consumer delivered: apply it unless a hand-off did already."""
        async with self._lock:
            if offset < self._next.get(partition, -1):
                return []  # handed over before the consumer got here
            return await self._apply(key, value, partition, offset)

    async def hand_over(self, records: Iterable[HandedInput]) -> list[Incident]:
        """Apply the just-published records that are next in their partition, in order."""
        events: list[Incident] = []
        async with self._lock:
            for (partition, offset), key, value in sorted(records, key=lambda r: r.written):
                if self._next.get(partition) != offset or not self.owns(partition):
                    continue  # records before it wait for the consumer: so does this one
                events += await self._apply(key, value, partition, offset)
                self.handed_over += 1
        return events

    async def forget(self) -> None:
        """The assignment is changing: finish what is in flight, forget the offsets."""
        async with self._lock:
            self._next.clear()

    async def _apply(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int
    ) -> list[Incident]:
        applied: Applied = self.desk.apply(key, value, partition, offset)
        await self.publish(applied.events)
        self.desk.store(applied)
        self._next[partition] = offset + 1
        return applied.events

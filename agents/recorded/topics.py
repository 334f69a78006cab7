"""Recorded events in the input topics, by event-time range: read-only, merged by event time.

A consumer without a group (nothing committed, nothing produced) reads every
partition from the offset of the range's start minus the lateness, and the
partitions are merged by event time. The reading runs on a thread of its own
with its own event loop (:func:`read_topic_range`), so whoever consumes the
events is plain synchronous code, the same that consumes a file's, and
fetching overlaps with what is done with the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import queue
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agents.pipelines.ingest import Validator
from agents.recorded.contracts import InputEvent
from agents.recorded.rejects import OnReject
from fireline.errors import ConfigError, EventError

QUEUE_DEPTH = 16  # fetched batches waiting for the consumer: bounds memory, not speed


@dataclass(frozen=True)
class TimeRange:
    """Event times ``[start, end)`` in epoch seconds, and how late records may be produced.

    ``lateness_s``: a record is produced at most this long after its event time;
    the topics are read from ``start - lateness_s`` (by record timestamp) and a
    partition is finished at its first record stamped after ``end + lateness_s``.
    """

    start: float
    end: float
    lateness_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ConfigError(f"--to must be after --from (got {self.start} .. {self.end})")


def read_topic_range(
    bootstrap: str,
    topics: dict[str, Validator[Any]],
    window: TimeRange,
    on_reject: OnReject,
    on_record: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[InputEvent]:
    """The valid events of ``topics`` in ``window``, merged by event time, read on a thread.

    ``topics`` maps each topic to the validator of its contract. The callbacks
    are those of :func:`read_topics`; they are called on the reading thread.
    """
    from aiokafka import AIOKafkaConsumer  # the CLI needs aiokafka only for this source

    async def batches() -> AsyncGenerator[list[InputEvent], None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await consumer.topics()  # metadata for partitions_for_topic
            async for batch in read_topics(
                consumer, topics, window, on_reject, on_record=on_record, on_total=on_total
            ):
                yield batch
        finally:
            await consumer.stop()

    return _on_a_thread(batches)


def _on_a_thread(
    batches: Callable[[], AsyncGenerator[list[InputEvent], None]],
) -> Iterator[InputEvent]:
    """Run ``batches`` on a thread with its own event loop; yield their events here."""
    handoff: queue.Queue[list[InputEvent] | BaseException | None] = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()

    async def pump() -> None:
        try:
            async with contextlib.aclosing(batches()) as stream:
                async for batch in stream:
                    if stop.is_set():
                        return
                    await asyncio.to_thread(handoff.put, batch)
        except BaseException as exc:  # noqa: BLE001  # handed over, raised by the reader
            handoff.put(exc)
            return
        handoff.put(None)

    thread = threading.Thread(target=asyncio.run, args=(pump(),), name="topic-reader")
    thread.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while thread.is_alive():  # let a blocked put finish, so the thread can stop
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.1)
        thread.join()


async def read_topics(
    consumer: Any,
    topics: dict[str, Validator[Any]],
    window: TimeRange,
    on_reject: OnReject,
    idle_ms: int = 1000,
    on_record: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[list[InputEvent]]:
    """The valid events of ``topics`` in ``window``, merged across partitions by event time.

    Yields them in batches: those that became ready with each fetch. ``consumer``:
    a started aiokafka consumer without a group (nothing is committed). Every
    partition is read from the offset of ``window.start - lateness`` until a
    record stamped past ``window.end + lateness``, or until it has nothing more
    once its end offset (taken at the start) is reached. The end offset alone is
    not trusted: a broker may report it low (Tansu: the last batch's base + 1).
    ``on_total`` is told how many records lie between the start and end offsets
    (a progress bar's total; an estimate, for the same reason).
    """
    merge = _PartitionMerge(consumer, topics, window, on_reject, on_record)
    total = await merge.seek()
    if on_total is not None:
        on_total(total)
    while merge.open or merge.heads:
        await merge.fill(idle_ms)
        ready = list(merge.ready())
        if ready:
            yield ready


class _PartitionMerge:
    """A k-way merge by event time of partitions read from the start of a time window."""

    def __init__(
        self,
        consumer: Any,
        topics: dict[str, Validator[Any]],
        window: TimeRange,
        on_reject: OnReject,
        on_record: Callable[[], None] | None,
    ) -> None:
        self.consumer = consumer
        self.topics = topics
        self.window = window
        self.on_reject = on_reject
        self.on_record = on_record
        self.open: set[Any] = set()  # partitions that may still hold events in the window
        self.heads: list[tuple[float, int, Any]] = []  # (event time, tie-break, partition)
        self._buffers: dict[Any, deque[InputEvent]] = {}
        self._ends: dict[Any, int] = {}
        self._order = 0
        self._stop_ms = int((window.end + window.lateness_s) * 1000)

    async def seek(self) -> int:
        """Assign every partition and seek it to the window; return the records to its end."""
        from aiokafka import TopicPartition  # the CLI needs aiokafka only for this source

        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return 0
        self.consumer.assign(partitions)
        self._buffers = {tp: deque() for tp in partitions}
        self._ends = await self.consumer.end_offsets(partitions)
        first_ms = max(int((self.window.start - self.window.lateness_s) * 1000), 0)
        starts = await self.consumer.offsets_for_times({tp: first_ms for tp in partitions})
        total = 0
        for tp in partitions:
            found = starts.get(tp)
            if found is not None:  # else nothing is stamped at or after the start
                self.consumer.seek(tp, found.offset)
                self.open.add(tp)
                total += max(self._ends.get(tp, 0) - found.offset, 0)
        return total

    async def fill(self, idle_ms: int) -> None:
        """Fetch for every open partition with nothing buffered; close the finished ones."""
        starving = [tp for tp in self.open if not self._buffers[tp]]
        if not starving:
            return
        fetched = await self.consumer.getmany(*starving, timeout_ms=idle_ms)
        for tp in starving:
            records = fetched.get(tp, [])
            if records:
                self._take(tp, records)
            elif await self.consumer.position(tp) >= self._ends.get(tp, 0):
                self.open.discard(tp)  # nothing more arrived after its end offset
            if self._buffers[tp] and not self._in_heads(tp):
                self._push(tp)

    def ready(self) -> Iterator[InputEvent]:
        """Events that no open partition can precede: each open one has one buffered."""
        while self.heads and all(self._buffers[tp] for tp in self.open):
            _, _, tp = heapq.heappop(self.heads)
            yield self._buffers[tp].popleft()
            if self._buffers[tp]:
                self._push(tp)

    def _take(self, tp: Any, records: list[Any]) -> None:
        for record in records:
            if self.on_record is not None:
                self.on_record()
            if record.timestamp > self._stop_ms:
                self.open.discard(tp)
                return
            try:
                event = self.topics[tp.topic].validate_one(record)
            except EventError as exc:
                self.on_reject(f"{tp.topic}[{tp.partition}]@{record.offset}", exc)
                continue
            if self.window.start <= event.timestamp < self.window.end:
                self._buffers[tp].append(event)

    def _in_heads(self, tp: Any) -> bool:
        return any(head[2] == tp for head in self.heads)

    def _push(self, tp: Any) -> None:
        heapq.heappush(self.heads, (self._buffers[tp][0].timestamp, self._order, tp))
        self._order += 1

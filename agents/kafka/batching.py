"""Micro-batch delivery for Faust: whole fetched record batches to a handler per topic.

Why: a stock Faust agent moves each message through Conductor → channel queue →
Stream → ack, and the drain loop wraps every single message in
``Service.wait_first(callback, suspend_flow.wait())`` (several tasks and an
``asyncio.wait`` per message). That per-message scheduling, not Kafka, is what
caps an out-of-the-box agent at a few thousand events/s with the CPU idle.

``BatchConsumer`` keeps everything else of Faust's aiokafka consumer (group
membership, assignment, rebalance flow control, generation checks, the commit
path and its timers) and replaces only the drain loop: each partition's fetched
records go to the topic's async handler in one call, then their offsets are
acknowledged in bulk into Faust's own ack bookkeeping, so commits (interval,
``broker_commit_every``, on stop) work as before. Topics without a handler
still go through the normal per-message path, so ordinary agents keep working.

Every Faust internal this needs is reached through ``SeamConsumer``
(agents.kafka.faust_seam), which pins the versions and checks them at start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from faust.types import TP

from agents.kafka.faust_seam import (
    OffsetLost,
    SeamConsumer,
    check_dependencies,
    watch_fetch_out_of_range,
)
from agents.pipelines.ingest import RawRecord

BatchHandler = Callable[[Sequence[RawRecord]], Awaitable[None]]

log = logging.getLogger(__name__)

# Young objects between collections: CPython's default is 700.
YOUNG_COLLECTION_THRESHOLD = 20_000


def tune_collector() -> None:
    """Run the cyclic garbage collector less often than CPython's defaults (once a process).

    A fetched batch allocates thousands of short-lived objects (records, label and
    feature dicts, detections) and, every 700 allocations, the collector walked
    the survivors: 12% of the detection CPU in ``bench/pipeline_cost.py``. Cycles
    are still collected, a little later; reference counting frees everything else
    at once, as before.
    """
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 20)


class BatchConsumer(SeamConsumer):
    """Faust's aiokafka consumer with whole-batch delivery for registered topics.

    ``fetch_max_wait_ms``: Faust hard-codes aiokafka's fetch long-poll at 1.5 s.
    aiokafka keeps one fetch in flight per broker, so once some assigned partitions
    are caught up (an idle labels topic, a partition with no keys) every fetch
    long-polls that long and the busy partitions queue behind it: throughput
    collapses to bursts. ``install`` sets it from the worker settings.
    """

    batch_handlers: ClassVar[dict[str, BatchHandler]] = {}
    fetch_max_wait_ms: ClassVar[int] = 100

    async def drain(self, fetcher: Any) -> None:
        """Deliver each fetched partition batch until the consumer or ``fetcher`` stops."""
        handlers = self.batch_handlers
        try:
            while not (self.should_stop or fetcher.should_stop):
                await self.read_cleared_again()
                clock = self.seek_clock
                records = await self.next_records(1.0)
                await asyncio.sleep(0)  # let other tasks run between fetches
                if records and not self.should_stop:
                    await self._deliver_fetch(records, handlers, clock)
                    await self.commit_if_due()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver_fetch(
        self, records: Mapping[Any, list[Any]], handlers: dict[str, BatchHandler], clock: int
    ) -> None:
        """Deliver a fetch that began at ``clock`` on the seek clock."""
        if not self.flow_active:
            # A rebalance began while this fetch was out, and the consumer's position
            # is already past these records: seek back to the committed offsets, as
            # Faust's own getmany does, or they would never be read again while this
            # worker keeps the partition (and the group's commit would stall there).
            await self.perform_seek()
            return
        generation = self.app.consumer_generation_id
        for key, batch in records.items():
            tp = TP(key.topic, key.partition)
            if self._rebalanced(generation):
                break  # the rest will be fetched again
            if not batch:
                continue
            if self.sought_since(tp, clock):
                # The fetch was out while a seek reset this partition's position, and
                # these records may come from before it (delivered, they would move
                # the read offset past what the seek asked for again: skipped for
                # good) or after it (dropped, lost). Seek again to where it asked.
                await self._seek_again(tp)
                continue
            await self._deliver(tp, batch, handlers)

    async def _seek_again(self, tp: TP) -> None:
        """Seek ``tp`` back to its read offset, the next to read since the last seek."""
        read = self.read_offset(tp)
        if read is None:  # no committed offset: the group starts it at its earliest
            read = (await self.earliest_offsets(tp))[tp]
        log.info("%s[%d]: fetched across a seek; sought again to %d", tp.topic, tp.partition, read)
        await self.seek(tp, read)

    def _rebalanced(self, generation: int) -> bool:
        """Whether a rebalance began since ``generation`` was read (then records are read again)."""
        return not self.flow_active or self.app.consumer_generation_id != generation

    async def _deliver(self, tp: TP, batch: list[Any], handlers: dict[str, BatchHandler]) -> None:
        # Faust's read offset is "next to read" after a seek to the committed
        # offset and "last read" after processing; like Faust's own drain loop,
        # skip only what lies before it, or the first record after every
        # rebalance would be lost.
        read = self.read_offset(tp)
        if read is not None and batch[0].offset < read:
            batch = [r for r in batch if r.offset >= read]
            if not batch:
                return
        generation, clock = self.app.consumer_generation_id, self.seek_clock
        handler = handlers.get(tp.topic)
        if handler is None:
            await self._deliver_each(tp, batch, generation, clock)
            return
        await self._fill_gap(tp, batch[0].offset)
        self._mark_inbound(tp)
        # A Faust event for the batch makes table writes in the handler go to the
        # changelog partition of this source partition, as in a stock agent.
        with self.current_event(tp, batch[0]):
            await handler(batch)  # aiokafka ConsumerRecords satisfy RawRecord
        if self._rebalanced(generation) or self.sought_since(tp, clock):
            # A rebalance began while the handler ran and the partition may move, or
            # a seek reset its position: these are read again from the last commit
            # (at-least-once) rather than our acks resurrecting revoked state or
            # moving the read offset past what the seek asked for again.
            log.info(
                "%s[%d]: offsets %d-%d handled while a rebalance or seek moved the "
                "partition; not acknowledged, read again from the last commit",
                tp.topic,
                tp.partition,
                batch[0].offset,
                batch[-1].offset,
            )
            return
        self.ack_range(tp, batch[0].offset, batch[-1].offset)

    def _mark_inbound(self, tp: TP) -> None:
        # Faust's slow-processing check reads this (set per event by its streams);
        # without it a lagging batch topic would be reported as idle after 300 s.
        inbound = getattr(self.app.monitor, "stream_inbound_time", None)
        if inbound is not None:
            inbound[tp] = time.monotonic()

    async def _deliver_each(self, tp: TP, batch: list[Any], generation: int, clock: int) -> None:
        """An ordinary agent's topic: Faust's per-message path."""
        for record in batch:
            if self._rebalanced(generation) or self.sought_since(tp, clock):
                return  # the rest is fetched again from the committed offset
            await self._fill_gap(tp, record.offset)
            await self.deliver_one(tp, record)

    async def _fill_gap(self, tp: TP, offset: int) -> None:
        # Offsets missing between fetches (transaction markers, compaction) must be
        # marked done or commits stop at the gap forever; Faust's own loop does this.
        # Unlike Faust's loop, the gap ends before `offset`: that record is acked
        # itself, and a duplicate in the ack list stalls the commit position.
        read = self.read_offset(tp)
        if read is not None and offset - read > 1:
            await self.mark_gap(tp, read + 1, offset - 1)


def install(
    app: Any,
    handlers: dict[str, BatchHandler],
    fetch_max_wait_ms: int = 100,
    on_offset_lost: OffsetLost | None = None,
    fetch_min_bytes: int = 1,
) -> None:
    """Make ``app`` use a BatchConsumer that sends these topics to these handlers.

    ``fetch_min_bytes``: the broker holds a fetch until that much is there or the
    long-poll ends, so that a trickle of events comes in fewer, larger batches.

    ``on_offset_lost`` is told of every consumer position the broker lost
    (agents.kafka.offset_loss reports them).

    Raises:
        DependencyMismatchError: if the installed Faust or aiokafka is not the version
            the consumer was written for (see agents.kafka.faust_seam).
    """
    check_dependencies()
    consumer_class = type(
        "FirelineBatchConsumer",
        (BatchConsumer,),
        {
            "batch_handlers": dict(handlers),
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "fetch_min_bytes": fetch_min_bytes,
            "offset_lost_reports": () if on_offset_lost is None else (on_offset_lost,),
        },
    )
    app.transport.Consumer = consumer_class
    if on_offset_lost is not None:
        watch_fetch_out_of_range(on_offset_lost)

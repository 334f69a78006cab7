"""Metric detector checkpoints written a slice at a time, so the event loop never stalls on them.

A checkpoint saves every series that learnt since the last one (``checkpoint_s``):
thousands of detectors encoded (msgpack, zlib) at tens of microseconds each.
Done in one go it held the event loop for hundreds of milliseconds every 10 s on
a loaded machine, and every sample fetched meanwhile waited: it was the tail of
the sample → detection latency. The timer now saves ``size`` detectors, yields to
the loop, and goes on. Each detector is still encoded whole, between two of its
updates; one that learns again meanwhile is dirty again and saved next time. On a
rebalance or at shutdown, what is left is saved at once (:meth:`flush`).

Each slice's changelog records are sent and acknowledged (``write``) before the
next slice is encoded: the checkpoint paces itself on the broker, and the
records never wait in Faust's producer buffer (see agents.service.app).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence

from agents.kafka.detector_store import ChangelogRecord, DetectorStore
from agents.pipelines.metric_pipeline import MetricPipeline

SLICE = 200  # detectors per slice: a few milliseconds of the loop


class SlicedCheckpoint:
    """Saves a MetricPipeline's dirty detectors through its store, ``size`` per loop turn."""

    def __init__(
        self,
        pipeline: MetricPipeline,
        write: Callable[[], Awaitable[None]],
        size: int = SLICE,
    ) -> None:
        """``write`` sends what the (deferred) store saved and waits for the broker."""
        self.pipeline = pipeline
        self.write = write
        self.size = size
        self._pending: dict[str, int] = {}  # series → partition, taken from the pipeline

    async def run(self) -> int:
        """Save what is dirty now, a slice per loop turn; return how many were saved."""
        store = self.pipeline.store
        if store is None:
            return 0
        self._pending.update(self.pipeline.dirty)
        self.pipeline.dirty = {}
        saved = 0
        while self._pending:
            piece = dict(itertools.islice(self._pending.items(), self.size))
            for series in piece:
                del self._pending[series]
            saved += store.save(self.pipeline.detectors, piece)
            await self.write()
            await asyncio.sleep(0)  # let fetched samples in between slices
        return saved

    def flush(self) -> int:
        """Save everything pending or dirty now, in one go (rebalance, shutdown).

        Synchronous: the caller sends what it saved (``ChangelogOutbox.seal`` writes it).
        """
        saved = 0
        if self.pipeline.store is not None and self._pending:
            saved = self.pipeline.store.save(self.pipeline.detectors, self._pending)
        self._pending = {}
        return saved + self.pipeline.checkpoint()


class ChangelogOutbox:
    """Sends what a deferred DetectorStore saved straight to the producer, then seals it."""

    def __init__(
        self,
        store: DetectorStore | None,
        send: Callable[[str, Sequence[ChangelogRecord]], Awaitable[None]],
        flush: Callable[[], Awaitable[None]],
    ) -> None:
        """``send(topic, records)`` waits for the broker; ``flush`` for the producer's queue."""
        self.store = store
        self.send = send
        self.flush = flush

    async def write(self) -> None:
        """Send the store's outbox to its changelog topic and wait until the broker has it."""
        store = self.store
        if store is not None and store.outbox:
            topic = store.table.changelog_topic.get_topic_name()
            await self.send(topic, store.take_outbox())

    async def seal(self) -> None:
        """Write the outbox; once everything queued is acknowledged, the seal in its own batch."""
        await self.write()
        store = self.store
        if store is not None and store.unsealed:
            await self.flush()  # what went through Faust's buffer (tombstones) too
            store.seal()
            await self.flush()

"""Metric detector checkpoints written a slice at a time, so the event loop never stalls on them.

A checkpoint saves every series that learnt since the last one (``checkpoint_s``):
thousands of detectors encoded (msgpack, zlib) at tens of microseconds each.
Done in one go it held the event loop for hundreds of milliseconds every 10 s on
a loaded machine, and every sample fetched meanwhile waited: it was the tail of
the sample → detection latency. The timer now saves ``size`` detectors, yields to
the loop, and goes on. Each detector is still encoded whole, between two of its
updates; one that learns again meanwhile is dirty again and saved next time. On a
rebalance or at shutdown, what is left is saved at once (:meth:`flush`).
"""

from __future__ import annotations

import asyncio
import itertools

from agents.pipelines.metric_pipeline import MetricPipeline

SLICE = 200  # detectors per slice: a few milliseconds of the loop


class SlicedCheckpoint:
    """Saves a MetricPipeline's dirty detectors through its store, ``size`` per loop turn."""

    def __init__(self, pipeline: MetricPipeline, size: int = SLICE) -> None:
        self.pipeline = pipeline
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
            await asyncio.sleep(0)  # let fetched samples in between slices
        return saved

    def flush(self) -> int:
        """Save everything pending or dirty now, in one go (rebalance, shutdown)."""
        saved = 0
        if self.pipeline.store is not None and self._pending:
            saved = self.pipeline.store.save(self.pipeline.detectors, self._pending)
        self._pending = {}
        return saved + self.pipeline.checkpoint()

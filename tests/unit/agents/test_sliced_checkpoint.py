"""Detector checkpoints in slices: every dirty detector saved, the loop free in between."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from agents.kafka.detector_store import SEAL_KEY, ChangelogRecord, DetectorStore
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.service.checkpoints import ChangelogOutbox, SlicedCheckpoint
from agents.settings import DetectionSettings
from tests.unit.agents.test_series_churn import Table, sample


class Changelog:
    """Where a deferred store's outbox goes: what was written, slice by slice."""

    def __init__(self, store: DetectorStore) -> None:
        self.store = store
        self.writes: list[list[ChangelogRecord]] = []

    async def write(self) -> None:
        records = self.store.take_outbox()
        await asyncio.sleep(0)  # the broker's ack
        self.writes.append(records)


def pipeline_with(series: int) -> tuple[MetricPipeline, Table, Changelog]:
    table = Table()
    store = DetectorStore(table, deferred=True)
    pipeline = MetricPipeline(DetectionSettings(), store=store)
    pipeline.process([sample(1000.0, 50.0, f"pod-{i}") for i in range(series)], 3)
    return pipeline, table, Changelog(store)


async def test_every_dirty_detector_is_saved_and_written_a_slice_per_loop_turn():
    pipeline, table, changelog = pipeline_with(450)
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    saved = await SlicedCheckpoint(pipeline, changelog.write, size=100).run()
    other.cancel()
    assert saved == 450 and len(table.data) == 450
    assert turns >= 5  # the loop ran other work between the five slices
    assert pipeline.dirty == {}
    # each slice written (and acknowledged) before the next was encoded; none queued in
    # Faust's producer buffer
    assert [len(w) for w in changelog.writes] == [100, 100, 100, 100, 50]
    assert {r.partition for w in changelog.writes for r in w} == {3}
    assert {r.key for w in changelog.writes for r in w} == set(table.data)
    assert table.sent == []


async def test_a_flush_saves_what_a_checkpoint_left_pending_and_what_learnt_since():
    pipeline, table, changelog = pipeline_with(300)
    checkpoint = SlicedCheckpoint(pipeline, changelog.write, size=100)
    run = asyncio.create_task(checkpoint.run())
    await asyncio.sleep(0)  # the first slice is saved, then the run waits for its write
    pipeline.process([sample(1001.0, 51.0, "pod-new")], 3)
    assert len(table.data) == 100
    assert checkpoint.flush() == 201  # the 200 left of the run, and the new series
    assert len(table.data) == 301
    assert await run == 100  # the run found nothing left after the flush
    await changelog.write()  # what the flush saved goes with the next write
    assert sum(len(w) for w in changelog.writes) == 301


def test_a_store_that_is_not_deferred_queues_each_record_with_the_table():
    table = Table()
    pipeline = MetricPipeline(DetectionSettings(), store=DetectorStore(table))
    pipeline.process([sample(1000.0, 50.0, f"pod-{i}") for i in range(3)], 1)
    assert pipeline.checkpoint() == 3
    assert sorted(key for _, key, _ in table.sent) == sorted(table.data)
    assert {partition for partition, _, _ in table.sent} == {1}
    assert pipeline.store is not None and pipeline.store.outbox == []


async def test_the_seal_goes_out_after_the_outbox_is_acknowledged_and_the_producer_flushed():
    pipeline, table, _ = pipeline_with(3)
    assert pipeline.checkpoint() == 3
    steps: list[str] = []

    async def send(topic: str, records: Sequence[ChangelogRecord]) -> None:
        await asyncio.sleep(0)
        steps.append(f"{len(records)} records to {topic}")

    async def flush() -> None:
        steps.append(f"flush ({len(table.sent)} queued)")

    table.changelog_topic = Topic("app-detector-state-changelog")
    await ChangelogOutbox(pipeline.store, send, flush).seal()
    assert steps == [
        "3 records to app-detector-state-changelog",
        "flush (0 queued)",
        "flush (1 queued)",  # the seal, alone, after everything before it was acknowledged
    ]
    assert table.sent == [(3, SEAL_KEY, b"")]


class Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name

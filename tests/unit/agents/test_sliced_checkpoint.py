"""Detector checkpoints in slices: every dirty detector saved, the loop free in between."""

from __future__ import annotations

import asyncio

from agents.kafka.detector_store import DetectorStore
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.service.checkpoints import SlicedCheckpoint
from agents.settings import DetectionSettings
from tests.unit.agents.test_series_churn import Table, sample


def pipeline_with(series: int) -> tuple[MetricPipeline, Table]:
    table = Table()
    pipeline = MetricPipeline(DetectionSettings(), store=DetectorStore(table))
    pipeline.process([sample(1000.0, 50.0, f"pod-{i}") for i in range(series)], 3)
    return pipeline, table


async def test_every_dirty_detector_is_saved_a_slice_per_loop_turn():
    pipeline, table = pipeline_with(450)
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    saved = await SlicedCheckpoint(pipeline, size=100).run()
    other.cancel()
    assert saved == 450 and len(table.data) == 450
    assert turns >= 5  # the loop ran other work between the five slices
    assert pipeline.dirty == {}


async def test_a_flush_saves_what_a_checkpoint_left_pending_and_what_learnt_since():
    pipeline, table = pipeline_with(300)
    checkpoint = SlicedCheckpoint(pipeline, size=100)
    run = asyncio.create_task(checkpoint.run())
    await asyncio.sleep(0)  # the first slice is written, then the run yields
    pipeline.process([sample(1001.0, 51.0, "pod-new")], 3)
    assert len(table.data) == 100
    assert checkpoint.flush() == 201  # the 200 left of the run, and the new series
    assert len(table.data) == 301
    assert await run == 100  # the run found nothing left after the flush

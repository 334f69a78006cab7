"""The batch drain loop across a rebalance: records it drops are read again, never skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from agents.kafka.batching import BatchConsumer

TOPIC = "drain.detections"


async def _nothing(*_: Any, **__: Any) -> None:
    return None


@pytest.fixture
async def consumer() -> AsyncIterator[Any]:
    app = faust.App("drain-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    ours = BatchConsumer(
        app.transport,
        callback=_nothing,
        on_partitions_revoked=_nothing,
        on_partitions_assigned=_nothing,
    )
    yield ours
    ours._thread.thread_loop.close()  # the consumer thread's own loop, never started


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", b"v", None, 1, 1, ())


async def test_drain__a_fetch_back_during_a_rebalance_seeks_to_the_committed_offsets(
    consumer, monkeypatch
):
    """The fetch moved the consumer's position past these records; dropped without a
    seek, they would be skipped by this worker, and the group's commit would stall."""
    fetcher = SimpleNamespace(should_stop=False)
    delivered: list[int] = []
    seeks: list[bool] = []

    async def fetch_as_a_rebalance_begins(timeout: float) -> dict[Any, list[Any]]:
        consumer.stop_flow()  # the rebalance began while the fetch was out
        fetcher.should_stop = True  # one round of the loop
        return {TopicPartition(TOPIC, 0): [record(5), record(6)]}

    async def deliver(tp: Any, batch: list[Any], handlers: Any) -> None:
        delivered.extend(r.offset for r in batch)

    async def perform_seek() -> None:
        seeks.append(consumer.flow_active)

    monkeypatch.setattr(consumer, "next_records", fetch_as_a_rebalance_begins)
    monkeypatch.setattr(consumer, "_deliver", deliver)
    monkeypatch.setattr(consumer, "perform_seek", perform_seek)
    await consumer.drain(fetcher)
    assert delivered == []
    assert seeks == [False]  # back to the committed offsets, the records fetched again


async def test_drain__a_fetch_with_the_flow_on_is_delivered_without_a_seek(consumer, monkeypatch):
    fetcher = SimpleNamespace(should_stop=False)
    delivered: list[int] = []

    async def fetch(timeout: float) -> dict[Any, list[Any]]:
        fetcher.should_stop = True
        return {TopicPartition(TOPIC, 0): [record(5), record(6)]}

    async def deliver(tp: Any, batch: list[Any], handlers: Any) -> None:
        delivered.extend(r.offset for r in batch)

    async def perform_seek() -> None:
        raise AssertionError("no seek while the flow is on")

    monkeypatch.setattr(consumer, "next_records", fetch)
    monkeypatch.setattr(consumer, "_deliver", deliver)
    monkeypatch.setattr(consumer, "perform_seek", perform_seek)
    await consumer.drain(fetcher)
    assert delivered == [5, 6]

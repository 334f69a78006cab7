"""The batch drain loop across a rebalance: records it drops are read again, never skipped."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.types import TP

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


@pytest.fixture
def seeks_without_a_broker(monkeypatch) -> list[tuple[Any, int]]:
    """Faust's own seeks (to the broker) only note where they went; the consumer's
    clock of seeks stays. Returns the single-partition seeks, in order."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    sought: list[tuple[Any, int]] = []

    async def seek(self: Any, partition: Any, offset: int) -> None:
        sought.append((partition, offset))
        self._read_offset[partition] = offset

    monkeypatch.setattr(faust_aiokafka.Consumer, "perform_seek", _nothing)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", seek)
    return sought


async def test_drain__a_fetch_that_a_seek_overtook_is_read_again_from_where_it_asked(
    consumer, monkeypatch, seeks_without_a_broker
):
    """Faust seeks to the committed offsets at the end of a recovery, also while a fetch
    is out, and that fetch may hold records from before the seek. Delivered, they moved
    the read offset past the records the seek asked for again: the kill -9 rounds saw a
    playbook request skipped for good (offsets 26-36 of a partition never ran). They may
    as well come from after it, so dropping them alone could lose them: the partition is
    sought again to where the seek asked (its read offset, the next to read)."""
    fetcher = SimpleNamespace(should_stop=False)
    delivered: list[int] = []
    tp = TP(TOPIC, 0)

    async def fetch_overtaken_by_a_seek(timeout: float) -> dict[Any, list[Any]]:
        await consumer.seek(tp, 26)  # the recovery's, while this fetch was out
        fetcher.should_stop = True
        return {TopicPartition(TOPIC, 0): [record(37), record(38)]}

    async def deliver(tp: Any, batch: list[Any], handlers: Any) -> None:
        delivered.extend(r.offset for r in batch)

    monkeypatch.setattr(consumer, "next_records", fetch_overtaken_by_a_seek)
    monkeypatch.setattr(consumer, "_deliver", deliver)
    await consumer.drain(fetcher)
    assert delivered == []
    assert seeks_without_a_broker == [(tp, 26), (tp, 26)]


async def test_deliver_one__a_seek_during_the_delivery_keeps_its_read_offset(
    consumer, seeks_without_a_broker
):
    tp = TP(TOPIC, 0)

    async def callback(message: Any) -> None:
        await consumer.perform_seek()
        consumer._read_offset[tp] = 26  # what the seek to the committed offset set

    consumer.callback = callback
    await consumer.deliver_one(tp, record(36))
    assert consumer.read_offset(tp) == 26

    consumer.callback = _nothing
    await consumer.deliver_one(tp, record(26))
    assert consumer.read_offset(tp) == 26  # no seek: the last record read


async def test_deliver__a_batch_handled_across_a_seek_is_not_acknowledged(
    consumer, seeks_without_a_broker, caplog
):
    """Its records come again from the committed offset (at least once), so acknowledging
    them could only move the read offset and the commit past what the seek asked for."""
    tp = TP(TOPIC, 0)
    handled: list[int] = []

    async def handler(batch: Any) -> None:
        handled.extend(r.offset for r in batch)
        await consumer.seek(tp, 3)

    with caplog.at_level(logging.INFO, logger="agents.kafka.batching"):
        await consumer._deliver(tp, [record(5), record(6)], {TOPIC: handler})
    assert handled == [5, 6]
    assert consumer.read_offset(tp) == 3  # where the seek went: not acknowledged (6)
    assert [r.getMessage() for r in caplog.records] == [
        (
            f"{TOPIC}[0]: offsets 5-6 handled while a rebalance or seek moved the partition; "
            "not acknowledged, read again from the last commit"
        )
    ]


async def test_drain__a_seek_of_another_partition_leaves_a_fetch_alone(
    consumer, monkeypatch, seeks_without_a_broker
):
    """Table recovery seeks changelog partitions while input records are out: those
    records' positions stand, and dropping them would lose them (the commit would stop)."""
    fetcher = SimpleNamespace(should_stop=False)
    delivered: list[int] = []

    async def fetch_while_a_changelog_is_sought(timeout: float) -> dict[Any, list[Any]]:
        await consumer.seek(TP("drain-state-changelog", 0), 0)
        fetcher.should_stop = True
        return {TopicPartition(TOPIC, 0): [record(5), record(6)]}

    async def deliver(tp: Any, batch: list[Any], handlers: Any) -> None:
        delivered.extend(r.offset for r in batch)

    monkeypatch.setattr(consumer, "next_records", fetch_while_a_changelog_is_sought)
    monkeypatch.setattr(consumer, "_deliver", deliver)
    await consumer.drain(fetcher)
    assert delivered == [5, 6]


async def test_drain__a_partition_without_a_commit_is_read_again_from_its_start(
    consumer, monkeypatch, seeks_without_a_broker
):
    """No committed offset (a partition never committed for): the group reads it from its
    earliest offset, so that is where it is sought again (a restarted worker once lost
    the playbook request it was killed in)."""
    fetcher = SimpleNamespace(should_stop=False)
    tp = TP(TOPIC, 1)

    async def fetch_overtaken_by_the_recovery_seek(timeout: float) -> dict[Any, list[Any]]:
        await consumer.perform_seek()  # found no committed offset for tp
        fetcher.should_stop = True
        return {TopicPartition(TOPIC, 1): [record(0)]}

    async def earliest_offsets(*partitions: Any) -> dict[Any, int]:
        return {p: 0 for p in partitions}

    monkeypatch.setattr(consumer, "next_records", fetch_overtaken_by_the_recovery_seek)
    monkeypatch.setattr(consumer, "earliest_offsets", earliest_offsets)
    await consumer.drain(fetcher)
    assert seeks_without_a_broker == [(tp, 0)]


async def test_records_cleared_from_an_agents_queue_are_read_again(
    consumer, monkeypatch, seeks_without_a_broker
):
    """Faust clears every agent's queue on each flow-control resume, also at the end of a
    recovery right after its seek: records delivered in between were thrown away with the
    read offset past them (the kill -9 rounds lost 18 playbook requests so)."""
    from mode.utils.queues import FlowControlQueue

    app, tp = consumer.app, TP(TOPIC, 0)
    queue = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=True)
    queue.put_nowait(SimpleNamespace(message=SimpleNamespace(topic=TOPIC, partition=0, offset=5)))
    queue.put_nowait(SimpleNamespace(message=SimpleNamespace(topic=TOPIC, partition=0, offset=6)))
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})

    app.flow_control.resume()  # the end of a recovery: the flow was on already
    assert queue.empty()
    await consumer.read_cleared_again()
    assert seeks_without_a_broker == [(tp, 5)]

    await consumer.read_cleared_again()  # once
    assert seeks_without_a_broker == [(tp, 5)]


async def test_records_cleared_by_a_rebalance_are_left_to_its_seek(
    consumer, monkeypatch, seeks_without_a_broker
):
    """A revocation clears the queues too; the next generation reads them again from the
    committed offset, and the partition may be another worker's by then."""
    from mode.utils.queues import FlowControlQueue

    app, tp = consumer.app, TP(TOPIC, 0)
    queue = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=True)
    queue.put_nowait(SimpleNamespace(message=SimpleNamespace(topic=TOPIC, partition=0, offset=5)))
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})

    app.flow_control.clear()  # the revocation's
    app.consumer_generation_id += 1  # the next assignment
    await consumer.read_cleared_again()
    assert seeks_without_a_broker == []

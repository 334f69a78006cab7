"""Lost consumer positions are reported: the seam finds them, OffsetLossReport says so."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP
from prometheus_client import CollectorRegistry

from agents.kafka import faust_seam
from agents.kafka.batching import BatchConsumer
from agents.kafka.offset_loss import OffsetLossReport
from agents.metrics import Metrics
from tests.unit.agents.test_faust_seam import TOPIC, TP0, make_consumer

Lost = list[tuple[TP, int, int | None]]


@pytest.fixture
async def consumer() -> AsyncIterator[Any]:
    made = make_consumer(type("Watched", (BatchConsumer,), {}))
    yield made
    made._thread.thread_loop.close()


def broker_says(monkeypatch: pytest.MonkeyPatch, committed: Mapping[TP, int | None]) -> None:
    """Faust's seek (through the consumer thread) answers ``committed``, as aiokafka's keys."""

    async def seek(self: Any) -> Mapping[Any, int | None]:
        return {TopicPartition(tp.topic, tp.partition): o for tp, o in committed.items()}

    monkeypatch.setattr(FaustConsumer, "seek_to_committed", seek)


def watch(consumer: Any) -> Lost:
    lost: Lost = []
    type(consumer).offset_lost_reports = (lambda tp, had, now: lost.append((tp, had, now)),)
    return lost


async def commit(consumer: Any, monkeypatch: pytest.MonkeyPatch, offset: int, ok: bool) -> None:
    """Commit ``offset`` of TP0 through the seam; the broker accepts it or not (a rebalance)."""

    async def answer(self: Any, offsets: Mapping[TP, int]) -> bool:
        return ok

    monkeypatch.setattr(FaustConsumer, "_commit", answer)
    assert await consumer._commit({TP0: offset}) is ok
    consumer._committed_offset[TP0] = offset  # Faust records it either way


async def test_a_committed_offset_that_vanished_from_the_broker_is_reported_once(
    consumer, monkeypatch
):
    lost = watch(consumer)
    await commit(consumer, monkeypatch, 30, ok=True)
    broker_says(monkeypatch, {TP0: None})

    await consumer.seek_to_committed()
    await consumer.seek_to_committed()

    assert lost == [(TP0, 30, None)]
    assert consumer._committed_offset[TP0] is None  # acks below 30 count again


async def test_a_commit_the_broker_refused_is_not_taken_for_one_it_lost(consumer, monkeypatch):
    lost = watch(consumer)
    await commit(consumer, monkeypatch, 30, ok=False)
    broker_says(monkeypatch, {TP0: None})

    await consumer.seek_to_committed()

    assert lost == []
    # Faust recorded it anyway; kept, it would drop the acknowledgements below 30 of
    # the records read again, and the group's commit would stall there.
    assert consumer._committed_offset[TP0] is None


@pytest.mark.parametrize("now", [12, 30, 45])
async def test_an_offset_the_broker_still_has_is_not_a_loss(consumer, monkeypatch, now):
    # Lower is not a loss either: Tansu does not fence a previous owner's late commit.
    lost = watch(consumer)
    await commit(consumer, monkeypatch, 30, ok=True)
    broker_says(monkeypatch, {TP0: now, TP(TOPIC, 1): None})  # never committed: nothing known

    await consumer.seek_to_committed()

    assert lost == []


@pytest.fixture
def fetcher_log() -> Any:
    """aiokafka's fetcher logger, its filters and level put back afterwards."""
    logger = logging.getLogger("aiokafka.consumer.fetcher")
    filters, level = list(logger.filters), logger.level
    yield logger
    logger.filters[:] = filters
    logger.setLevel(level)


def test_aiokafka_s_out_of_range_reset_becomes_a_report_not_an_info_line(caplog, fetcher_log):
    lost: Lost = []
    faust_seam.watch_fetch_out_of_range(lambda tp, had, now: lost.append((tp, had, now)))
    with caplog.at_level(logging.INFO):
        fetcher_log.info(faust_seam.FETCH_OUT_OF_RANGE, 1050, TopicPartition(TOPIC, 0))
        fetcher_log.info("Something else")

    assert lost == [(TP0, 1050, None)]
    assert [r.getMessage() for r in caplog.records] == ["Something else"]


def test_the_report_is_one_error_line_naming_the_partition_and_a_counter(caplog):
    metrics = Metrics.create(CollectorRegistry())
    report = OffsetLossReport(metrics.offsets_reset)

    with caplog.at_level(logging.ERROR):
        report(TP0, 30, None)
        report(TP(TOPIC, 1), 200, 12)

    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(
        f"offsets lost on topic {TOPIC} partition 0: the consumer group's position 30 is gone"
    )
    assert (
        f"topic {TOPIC} partition 1: the consumer group's position 200 went back to 12"
        in (messages[1])
    )
    value = metrics.registry.get_sample_value
    assert value("fireline_offsets_reset_total", {"topic": TOPIC, "partition": "0"}) == 1
    assert value("fireline_offsets_reset_total", {"topic": TOPIC, "partition": "1"}) == 1

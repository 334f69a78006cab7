"""ConsumerLag: refreshed from an offset reader, reported on scrape from the last answer."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP
from prometheus_client import CollectorRegistry

from agents.kafka.faust_seam import PartitionOffsets
from agents.metrics import Metrics

M0, M1, I0 = TP("fireline.metrics", 0), TP("fireline.metrics", 1), TP("fireline.incidents", 0)


class Reader:
    """An OffsetReader with fixed answers (the real one is tested against the broker)."""

    def __init__(self, owned: set[TP], offsets: Mapping[TP, PartitionOffsets] | Exception) -> None:
        self._owned = owned
        self._offsets = offsets
        self.asked: list[set[TP]] = []

    def owned(self) -> set[TP]:
        return self._owned

    async def offsets(self, partitions: Collection[TP]) -> Mapping[TP, PartitionOffsets]:
        self.asked.append(set(partitions))
        if isinstance(self._offsets, Exception):
            raise self._offsets
        return self._offsets


@pytest.fixture
def metrics() -> Metrics:
    return Metrics.create(CollectorRegistry())


def lag(metrics: Metrics, tp: TP) -> float | None:
    labels = {"topic": tp.topic, "partition": str(tp.partition)}
    return metrics.registry.get_sample_value("fireline_consumer_lag", labels)


async def test_refresh__reports_end_minus_committed_for_each_owned_partition(metrics):
    reader = Reader(
        {M0, M1, I0},
        {
            M0: PartitionOffsets(start=0, end=1200, committed=1000),
            M1: PartitionOffsets(start=300, end=500, committed=None),  # from the log start
            I0: PartitionOffsets(start=0, end=51, committed=1050),  # Tansu's end: never < 0
        },
    )
    assert await metrics.consumer_lag.refresh(reader)
    assert (lag(metrics, M0), lag(metrics, M1), lag(metrics, I0)) == (200, 200, 0)
    assert reader.asked == [{M0, M1, I0}]


async def test_refresh__owning_nothing_reports_nothing_and_asks_nothing(metrics):
    await metrics.consumer_lag.refresh(Reader({M0}, {M0: PartitionOffsets(0, 10, 5)}))
    reader = Reader(set(), {})
    assert await metrics.consumer_lag.refresh(reader)
    assert lag(metrics, M0) is None
    assert reader.asked == []


async def test_refresh__a_broker_that_does_not_answer_keeps_the_last_lags_still_owned(metrics):
    offsets = {M0: PartitionOffsets(0, 10, 5), M1: PartitionOffsets(0, 30, 10)}
    await metrics.consumer_lag.refresh(Reader({M0, M1}, offsets))
    assert not await metrics.consumer_lag.refresh(Reader({M0}, KafkaTimeoutError()))
    assert metrics.consumer_lag.lags == {M0: 5}  # M1 was revoked meanwhile: dropped


async def test_refresh__an_unexpected_error_is_not_swallowed(metrics):
    with pytest.raises(ZeroDivisionError):
        await metrics.consumer_lag.refresh(Reader({M0}, ZeroDivisionError()))


def test_collect__before_any_refresh_the_family_is_there_without_samples(metrics):
    (family,) = [f for f in metrics.registry.collect() if f.name == "fireline_consumer_lag"]
    assert family.type == "gauge"
    assert family.samples == []

"""The seek back to the committed offsets and refused commits, on partitions never committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from faust.transport.consumer import Consumer as FaustBaseConsumer
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from agents.kafka import faust_seam
from agents.kafka.batching import BatchConsumer
from tests.unit.agents.test_faust_seam import TOPIC, TP0, make_consumer

CHANGELOG = "seam-state-changelog"  # not acknowledged: Faust positions it itself


@pytest.fixture
async def consumer() -> AsyncIterator[Any]:
    made = make_consumer(type("Committing", (BatchConsumer,), {}))
    yield made
    made._thread.thread_loop.close()


class FakeAiokafka:
    """aiokafka's consumer as the seek sees it: committed offsets, and where it was sought."""

    def __init__(self, committed: Mapping[TopicPartition, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TopicPartition] = []

    async def seek_to_committed(self) -> Mapping[TopicPartition, int | None]:
        return self.committed  # and, like aiokafka 0.14, moves only offsets > 0

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.to_beginning.extend(partitions)


async def test_seek_to_committed__an_input_partition_never_committed_goes_to_its_log_start(
    consumer,
):
    """aiokafka leaves it where it is: records fetched before the seek were never read
    again, and the group's commit on it never came (the playbook restart test)."""
    never, zero, committed = (TopicPartition(TOPIC, p) for p in (0, 1, 2))
    changelog = TopicPartition(CHANGELOG, 0)
    fake = FakeAiokafka({never: None, zero: 0, committed: 40, changelog: None})
    consumer._thread._ensure_consumer = lambda: fake

    answer = await consumer._thread.seek_each_to_committed()

    assert answer == fake.committed  # what Faust reads: unchanged
    assert fake.to_beginning == [never, zero]


async def refuse_commits(consumer: Any, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    async def refused(self: Any, offsets: Mapping[TP, int]) -> bool:
        return False  # Faust's answer when the broker says the group rebalanced

    monkeypatch.setattr(FaustConsumer, "_commit", refused)
    for offset in range(count):
        assert await consumer._commit({TP0: 10 + offset}) is False


async def test_commit__refused_again_and_again_is_a_warning_naming_the_offsets(
    consumer, monkeypatch, caplog
):
    with caplog.at_level(logging.WARNING, logger="agents.kafka.faust_seam"):
        await refuse_commits(consumer, monkeypatch, 2)
        assert caplog.records == []  # one rebalance refuses a commit or two

        await refuse_commits(consumer, monkeypatch, 1)

    [warning] = caplog.records
    assert warning.getMessage().startswith("3 offset commits in a row were refused")
    assert warning.getMessage().endswith(f"refused: {TOPIC}[0]@10")


async def test_commit__one_taken_by_the_broker_starts_the_count_again(
    consumer, monkeypatch, caplog
):
    await refuse_commits(consumer, monkeypatch, 2)

    async def taken(self: Any, offsets: Mapping[TP, int]) -> bool:
        return True

    monkeypatch.setattr(FaustConsumer, "_commit", taken)
    assert await consumer._commit({TP0: 20}) is True
    with caplog.at_level(logging.WARNING, logger="agents.kafka.faust_seam"):
        await refuse_commits(consumer, monkeypatch, 2)
    assert caplog.records == []


@pytest.fixture
def commit_taking(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Faust's commit made to take ``seconds``, ``at_broker`` or before (the producer's flush)."""
    monkeypatch.setattr(faust_seam, "SLOW_COMMIT_S", 0.05)

    def take(seconds: float, at_broker: bool) -> None:
        async def broker(self: Any, offsets: Mapping[TP, int]) -> bool:
            await asyncio.sleep(seconds)
            return True

        async def commit(self: Any, *args: Any, **kwargs: Any) -> bool:
            if at_broker:
                return bool(await self._commit({TP0: 5}))
            await asyncio.sleep(seconds)  # the producer's flush
            return True

        monkeypatch.setattr(FaustConsumer, "_commit", broker)
        monkeypatch.setattr(FaustBaseConsumer, "commit", commit)

    return take


@pytest.mark.parametrize(
    ("at_broker", "waiting"), [(False, "the producer's flush"), (True, "the broker's answer")]
)
async def test_commit__one_that_does_not_finish_is_a_warning_while_it_waits(
    consumer, commit_taking, caplog, at_broker, waiting
):
    commit_taking(0.2, at_broker)
    with caplog.at_level(logging.WARNING, logger="agents.kafka.faust_seam"):
        assert await consumer.commit() is True

    [warning] = caplog.records
    assert warning.getMessage().startswith(
        f"an offset commit has not finished in 0 s (waiting for {waiting})"
    )


async def test_commit__a_quick_one_says_nothing(consumer, commit_taking, caplog):
    with caplog.at_level(logging.WARNING, logger="agents.kafka.faust_seam"):
        commit_taking(0.0, at_broker=True)
        assert await consumer.commit() is True
        # A slow commit after it warns (the positive signal): the loop runs timers in
        # deadline order, so a warning the quick one left armed would have come first.
        commit_taking(0.2, at_broker=True)
        assert await consumer.commit() is True

    [warning] = caplog.records
    assert warning.getMessage().startswith(
        "an offset commit has not finished in 0 s (waiting for the broker's answer)"
    )

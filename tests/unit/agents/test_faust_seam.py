"""The Faust seam: the start-up check, the exact pins, and acks that follow Faust's own.

The ack tests compare the seam's bulk ack with faust-streaming's ``Consumer.ack``
on real consumers (no broker: building one connects to nothing), so they read
Faust's private ack bookkeeping, which is what the commit path reads.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from faust.transport.consumer import Consumer as FaustBaseConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP
from faust.types import tuples as faust_tuples
from faust.types.tuples import Message
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.cli.main import main
from agents.kafka import batching, faust_seam
from agents.kafka.batching import BatchConsumer
from fireline.errors import DependencyMismatchError

ROOT = Path(__file__).parents[3]
TOPIC = "seam.metrics"
TP0 = TP(TOPIC, 0)


def found_versions(**found: str | None) -> Any:
    """An ``installed_version`` that reports ``found`` and the pins for everything else."""
    return lambda distribution: found.get(
        distribution.replace("-", "_"), faust_seam.PINNED[distribution]
    )


def test_check_dependencies__the_pinned_versions_pass():
    faust_seam.check_dependencies()
    assert {d: faust_seam.installed_version(d) for d in faust_seam.PINNED} == faust_seam.PINNED


def test_check_dependencies__another_faust_version_is_refused_naming_both(monkeypatch):
    monkeypatch.setattr(faust_seam, "installed_version", found_versions(faust_streaming="0.16.0"))
    with pytest.raises(DependencyMismatchError) as err:
        faust_seam.check_dependencies()
    assert str(err.value) == (
        "fireline's batch consumer relies on Faust and aiokafka internals "
        "(agents/kafka/faust_seam.py) that these installed versions do not match:\n"
        "  faust-streaming 0.16.0 is installed, expected 0.15.3\n"
        "To fix: install the pinned versions (pip install -c constraints.txt -e .), or port "
        "agents/kafka/faust_seam.py to the installed ones and update its pins together."
    )


def test_check_dependencies__every_problem_is_listed(monkeypatch):
    monkeypatch.setattr(
        faust_seam, "installed_version", found_versions(faust_streaming="0.15.2", aiokafka=None)
    )
    monkeypatch.delattr(FaustBaseConsumer, "_add_gap")
    with pytest.raises(DependencyMismatchError) as err:
        faust_seam.check_dependencies()
    assert str(err.value).splitlines()[1:4] == [
        "  faust-streaming 0.15.2 is installed, expected 0.15.3",
        "  aiokafka is not installed, expected 0.14.0",
        "  faust.transport.drivers.aiokafka.Consumer._add_gap is missing",
    ]


async def _start_without_reading_the_long_poll(self: Any) -> None:
    """An aiokafka start() that no longer reads ``_fetch_max_wait_ms`` or ``_fetch_min_bytes``."""


@pytest.mark.parametrize(
    ("owner", "name", "named"),
    [
        (faust.streams, "_current_event", "faust.streams._current_event"),
        (faust_tuples, "ack_lock", "faust.types.tuples.ack_lock"),
        (
            FaustBaseConsumer,
            "_drain_messages",
            "faust.transport.drivers.aiokafka.Consumer._drain_messages",
        ),
        # An instance attribute, known from the class's annotations.
        (
            FaustBaseConsumer,
            "__annotations__",
            "faust.transport.drivers.aiokafka.Consumer._acked_index",
        ),
        # What the consumer-lag metric asks its offsets through.
        (
            AIOKafkaConsumerThread,
            "_ensure_consumer",
            "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer",
        ),
    ],
    ids=["module-variable", "lock", "method", "instance-attribute", "lag-consumer"],
)
def test_check_dependencies__a_missing_private_name_is_refused_naming_it(
    monkeypatch, owner, name, named
):
    if name == "__annotations__":
        annotations = dict(FaustBaseConsumer.__annotations__)
        del annotations["_acked_index"]
        monkeypatch.setattr(FaustBaseConsumer, "__annotations__", annotations)
    else:
        monkeypatch.delattr(owner, name)
    with pytest.raises(DependencyMismatchError) as err:
        faust_seam.check_dependencies()
    assert str(err.value).splitlines()[1] == f"  {named} is missing"


def test_check_dependencies__aiokafka_no_longer_reading_the_long_poll_is_refused(monkeypatch):
    monkeypatch.setattr(aiokafka.AIOKafkaConsumer, "start", _start_without_reading_the_long_poll)
    with pytest.raises(DependencyMismatchError) as err:
        faust_seam.check_dependencies()
    assert str(err.value).splitlines()[1:3] == [
        "  aiokafka.AIOKafkaConsumer._fetch_max_wait_ms (read by start()) is missing",
        "  aiokafka.AIOKafkaConsumer._fetch_min_bytes (read by start()) is missing",
    ]


def test_run__refuses_to_start_on_another_faust_version(monkeypatch, capsys):
    monkeypatch.setattr(faust_seam, "installed_version", found_versions(faust_streaming="0.16.0"))
    # No broker listens here: the refusal comes before anything connects.
    monkeypatch.setenv("FIRELINE_BROKER_URL", "kafka://127.0.0.1:1")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fireline: error: fireline's batch consumer relies on Faust")
    assert "faust-streaming 0.16.0 is installed, expected 0.15.3" in err


def test_install__refuses_another_faust_version(monkeypatch):
    monkeypatch.setattr(faust_seam, "installed_version", found_versions(aiokafka="0.13.0"))
    app = faust.App("seam-install", broker="kafka://127.0.0.1:1", web_enabled=False)
    with pytest.raises(DependencyMismatchError, match=r"aiokafka 0\.13\.0 is installed"):
        batching.install(app, {})


def _pinned(requirements: list[str]) -> dict[str, str]:
    pins = (re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", r.strip()) for r in requirements)
    return {m[1].lower(): m[2] for m in pins if m}


def test_pins__pyproject_and_constraints_pin_exactly_the_seam_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _pinned(project["dependencies"])
    constraints = _pinned((ROOT / "constraints.txt").read_text().splitlines())
    for distribution, version in faust_seam.PINNED.items():
        assert declared.get(distribution) == version, f"pyproject.toml pins {distribution}"
        assert constraints.get(distribution) == version, f"constraints.txt pins {distribution}"


# --- acks: the seam's bulk ack against Faust's own Consumer.ack -------------------------


async def _no_callback(*_: Any, **__: Any) -> None:
    return None


def make_consumer(cls: type[FaustConsumer]) -> Any:
    """A consumer of a fresh app, on the running loop; ``TOPIC`` acks as a subscribed topic."""
    app = faust.App(f"seam-{cls.__name__}", broker="kafka://127.0.0.1:1", web_enabled=False)
    app.topics.acking_topics.add(TOPIC)
    return cls(
        app.transport,
        callback=_no_callback,
        on_partitions_revoked=_no_callback,
        on_partitions_assigned=_no_callback,
    )


@pytest.fixture
async def ours() -> AsyncIterator[Any]:
    consumer = make_consumer(BatchConsumer)
    yield consumer
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never started


@pytest.fixture
async def theirs() -> AsyncIterator[Any]:
    consumer = make_consumer(FaustConsumer)
    yield consumer
    consumer._thread.thread_loop.close()


def reset(consumer: Any, committed: int | None, acking: bool) -> None:
    for state in (consumer._acked, consumer._acked_index, consumer._read_offset):
        state.clear()
    consumer._n_acked = 0
    consumer._committed_offset[TP0] = committed
    acking_topics = consumer.app.topics.acking_topics
    acking_topics.add(TOPIC) if acking else acking_topics.discard(TOPIC)


def bookkeeping(consumer: Any) -> tuple[list[int], set[int], int]:
    return list(consumer._acked[TP0]), set(consumer._acked_index[TP0]), consumer._n_acked


def faust_ack_each(consumer: Any, first: int, last: int) -> None:
    for offset in range(first, last + 1):
        message = Message(TOPIC, 0, offset, 0.0, 0, None, None, None, None, tp=TP0)
        consumer.ack(message)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # reset per example
@given(
    committed=st.none() | st.integers(0, 30),
    already=st.sets(st.integers(0, 40), max_size=10),
    first=st.integers(0, 40),
    length=st.integers(1, 15),
    acking=st.booleans(),
)
def test_ack_range__leaves_the_bookkeeping_faust_ack_leaves_for_each_offset(
    ours, theirs, committed, already, first, length, acking
):
    last = first + length - 1
    for consumer in (ours, theirs):
        reset(consumer, committed, acking)
        for offset in sorted(already):
            faust_ack_each(consumer, offset, offset)
    ours.ack_range(TP0, first, last)
    faust_ack_each(theirs, first, last)
    assert bookkeeping(ours) == bookkeeping(theirs)
    assert ours._read_offset[TP0] == last


def test_ack_range__counts_towards_commit_every_once_per_offset(ours):
    ours.ack_range(TP0, 0, 9)
    ours.ack_range(TP0, 5, 14)  # a re-read overlap is not counted twice
    assert ours._n_acked == 15
    assert ours._acked[TP0] == list(range(15))


async def test_ack_range__wakes_a_consumer_waiting_for_acks(ours):
    waiter = asyncio.create_task(ours._wait_for_ack(timeout=1))
    await asyncio.sleep(0)  # let it arm its future
    assert ours._waiting_for_ack is not None
    ours.ack_range(TP0, 0, 3)
    await asyncio.wait_for(waiter, 0.5)  # woken, long before its own 1 s timeout
    assert ours._waiting_for_ack is None


class RecordingLock:
    """Faust's ack lock, recording the ack count when taken and when released."""

    def __init__(self, consumer: Any) -> None:
        self.lock = faust_tuples.ack_lock
        self.consumer = consumer
        self.seen: list[tuple[str, int]] = []

    def __enter__(self) -> None:
        self.lock.__enter__()
        self.seen.append(("taken", self.consumer._n_acked))

    def __exit__(self, *exc: object) -> None:
        self.seen.append(("released", self.consumer._n_acked))
        self.lock.__exit__(*exc)


def test_ack_range__updates_the_bookkeeping_under_fausts_ack_lock(ours, monkeypatch):
    lock = RecordingLock(ours)
    monkeypatch.setattr(faust_tuples, "ack_lock", lock)
    ours.ack_range(TP0, 0, 4)
    assert lock.seen == [("taken", 0), ("released", 5)]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # reset per example
@given(
    committed=st.none() | st.integers(0, 30),
    acks=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), min_size=1, max_size=8),
    gap=st.none() | st.tuples(st.integers(0, 60), st.integers(1, 5)),
    acking=st.booleans(),
)
# Hypothesis' find: Faust's gap path lists gap offsets again (duplicates, not indexed).
@example(committed=None, acks=[(0, 3)], gap=(1, 3), acking=True)
def test_new_offset__is_fausts_and_leaves_the_same_bookkeeping(
    ours, theirs, committed, acks, gap, acking
):
    for consumer in (ours, theirs):
        reset(consumer, committed, acking)
        consumer._gap.clear()
        for first, length in acks:
            faust_ack_each(consumer, first, first + length - 1)
        if gap is not None:
            consumer._gap[TP0].addi(gap[0], gap[0] + gap[1])
    for _ in range(3):  # successive commits: each takes the run it returns off the list
        answer = FaustConsumer._new_offset(theirs, TP0)
        assert ours._new_offset(TP0) == answer
        assert bookkeeping(ours) == bookkeeping(theirs)
        assert list(ours._gap[TP0]) == list(theirs._gap[TP0])

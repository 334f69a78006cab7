"""The per-channel token bucket that paces chat messages."""

from __future__ import annotations

import asyncio

import pytest

from playbooks.chat.pacing import ChannelPacer


class FakeTime:
    """A clock that moves only when the pacer sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(time: FakeTime, rate: float = 1.0, burst: int = 3) -> ChannelPacer:
    return ChannelPacer(rate, burst, clock=time.clock, sleep=time.sleep)


async def test_a_burst_goes_at_once_then_one_per_interval():
    time = FakeTime()
    p = pacer(time, rate=2.0, burst=3)
    waits = [await p.wait("#a") for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    assert time.now == pytest.approx(1.5)


async def test_channels_are_paced_independently():
    time = FakeTime()
    p = pacer(time, burst=1)
    assert [await p.wait("#a"), await p.wait("#b"), await p.wait("#a")] == [0.0, 0.0, 1.0]


async def test_a_quiet_channel_earns_its_burst_back_but_no_more():
    time = FakeTime()
    p = pacer(time, rate=1.0, burst=2)
    for _ in range(4):
        await p.wait("#a")
    time.now += 100.0
    waits = [await p.wait("#a") for _ in range(3)]
    assert waits == [0.0, 0.0, 1.0]


async def test_concurrent_posts_to_one_channel_queue_in_order():
    time = FakeTime()
    p = pacer(time, rate=1.0, burst=1)
    order: list[int] = []

    async def post(n: int) -> None:
        await p.wait("#a")
        order.append(n)

    await asyncio.gather(*(post(n) for n in range(4)))
    assert order == [0, 1, 2, 3] and p.waited_s == pytest.approx(3.0)


def test_nonsense_rates_are_refused():
    with pytest.raises(ValueError, match="rate_per_s"):
        ChannelPacer(0.0)

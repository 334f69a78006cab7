"""Per-channel pacing of chat messages: a token bucket for each channel.

Slack accepts about one message per second per channel, with short bursts, and
answers more with 429. Waiting for a token here spreads an incident storm out
instead; the wait happens in the playbook executor, never on the detection path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float
    lock: asyncio.Lock


class ChannelPacer:
    """At most ``rate_per_s`` messages per second per channel, ``burst`` at once."""

    def __init__(
        self,
        rate_per_s: float = 1.0,
        burst: int = 4,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self.waited_s = 0.0  # total time spent waiting, for tests and metrics
        self._buckets: dict[str, _Bucket] = {}

    async def wait(self, channel: str) -> float:
        """Take a token for ``channel``, waiting until one is there; return the wait."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = _Bucket(
                float(self.burst), self.clock(), asyncio.Lock()
            )
        async with bucket.lock:  # first come, first served within a channel
            now = self.clock()
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
            delay = 0.0
            if bucket.tokens < 1:
                delay = (1 - bucket.tokens) / self.rate_per_s
                await self.sleep(delay)
                bucket.tokens, bucket.at = 1.0, bucket.at + delay
            bucket.tokens -= 1
            self.waited_s += delay
            return delay

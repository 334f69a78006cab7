"""Demo traffic: a fraud model's prediction logs and its service metrics, with a spike.

Realistic enough to exercise the pipeline: log-normal transaction amounts, a few
categorical features, a logistic fraud score, per-prediction latency, and a
service latency series sampled ten times a second that jumps ``spike_factor``
times for ``spike_duration_s`` after ``spike_at_s``. The version that serves can
change while it runs (the bad-deploy demo asks its registry each tick); a version
in ``worse_versions`` scores every transaction ``worse_logit`` higher (a broken
feature pipeline: more false alarms).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from agents.settings import Topics

COUNTRIES = ("DE", "FR", "NL", "US", "GB", "PL", "ES", "IT")
CATEGORIES = ("grocery", "travel", "electronics", "fuel", "gaming", "fashion")
MODEL = "fraud"
MODEL_VERSION = "7"
SERVICE = "fraud-api"


@dataclass(frozen=True)
class TrafficProfile:
    """What to send and when."""

    predictions_per_s: float = 300.0
    metric_interval_s: float = 0.1
    base_latency_ms: float = 45.0
    spike_at_s: float | None = 30.0
    spike_factor: float = 8.0
    spike_duration_s: float = 45.0
    seed: int = 7
    worse_versions: frozenset[str] = frozenset()
    worse_logit: float = 1.5


class TrafficModel:
    """Generates the events; pure, seeded, driven by the caller's clock."""

    def __init__(self, profile: TrafficProfile) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self._next_id = 0

    def spiking(self, elapsed_s: float) -> bool:
        """Whether the injected latency spike is on at ``elapsed_s``."""
        p = self.profile
        return (
            p.spike_at_s is not None
            and p.spike_at_s <= elapsed_s < p.spike_at_s + p.spike_duration_s
        )

    def latency(self, elapsed_s: float) -> float:
        """One service latency sample in milliseconds."""
        p = self.profile
        level = p.base_latency_ms * (p.spike_factor if self.spiking(elapsed_s) else 1.0)
        return round(max(1.0, self.rng.gauss(level, level * 0.06)), 2)

    def prediction(
        self, now: float, elapsed_s: float, version: str = MODEL_VERSION
    ) -> dict[str, object]:
        """One prediction log record of ``version``."""
        rng = self.rng
        self._next_id += 1
        amount = round(rng.lognormvariate(3.6, 1.1), 2)
        country = rng.choice(COUNTRIES)
        category = rng.choice(CATEGORIES)
        card_age_days = rng.randint(0, 3650)
        logit = -4.0 + 0.0009 * amount + (1.2 if category in ("gaming", "electronics") else 0.0)
        logit += 0.8 if card_age_days < 30 else 0.0
        logit += self.profile.worse_logit if version in self.profile.worse_versions else 0.0
        return {
            "timestamp": round(now, 3),
            "model": MODEL,
            "model_version": version,
            "prediction_id": f"p-{self.profile.seed}-{self._next_id:09d}",
            "features": {
                "amount": amount,
                "country": country,
                "merchant_category": category,
                "card_age_days": card_age_days,
                "device_score": None if rng.random() < 0.02 else round(rng.random(), 3),
            },
            "prediction": round(1 / (1 + math.exp(-logit)), 4),
            "latency_ms": self.latency(elapsed_s),
        }

    def metrics(self, now: float, elapsed_s: float) -> Iterator[dict[str, object]]:
        """One round of service metrics."""
        labels = {"service": SERVICE, "model": MODEL, "model_version": MODEL_VERSION}
        yield {
            "timestamp": round(now, 3),
            "name": "latency_ms",
            "value": self.latency(elapsed_s),
            "labels": labels,
        }
        yield {
            "timestamp": round(now, 3),
            "name": "error_rate",
            "value": round(max(0.0, self.rng.gauss(0.004, 0.001)), 5),
            "labels": labels,
        }
        yield {
            "timestamp": round(now, 3),
            "name": "cpu_utilization",
            "value": round(min(1.0, max(0.0, self.rng.gauss(0.42, 0.03))), 3),
            "labels": {"service": SERVICE, "instance": "fraud-api-0"},
        }


class TrafficSimulator:
    """Sends a TrafficModel's events to Kafka in real time until stopped."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Topics,
        profile: TrafficProfile,
        on_tick: Callable[[float, bool], None] | None = None,
        serving: Callable[[], str] | None = None,
    ) -> None:
        """``serving``: the version live now, asked each tick (default: always 7)."""
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.model = TrafficModel(profile)
        self.on_tick = on_tick
        self.serving = serving or (lambda: MODEL_VERSION)
        self.sent = 0

    async def run(self, stop: asyncio.Event, duration_s: float | None = None) -> int:
        """Produce until ``stop`` is set (or ``duration_s`` passes); return events sent."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=20, acks=1)
        await producer.start()
        try:
            await self._loop(producer, stop, duration_s)
            await producer.flush()
        finally:
            await producer.stop()
        return self.sent

    async def _loop(
        self, producer: AIOKafkaProducer, stop: asyncio.Event, duration_s: float | None
    ) -> None:
        profile = self.model.profile
        start = time.monotonic()
        owed = 0.0
        last = start
        while not stop.is_set():
            tick = time.monotonic()
            elapsed = tick - start
            if duration_s is not None and elapsed >= duration_s:
                return
            now = time.time()
            owed += (tick - last) * profile.predictions_per_s
            last = tick
            version = self.serving()
            for _ in range(int(owed)):
                await self._send(
                    producer,
                    self.topics.predictions,
                    MODEL,
                    self.model.prediction(now, elapsed, version),
                )
            owed -= int(owed)
            for sample in self.model.metrics(now, elapsed):
                await self._send(producer, self.topics.metrics, str(sample["name"]), sample)
            if self.on_tick is not None:
                self.on_tick(elapsed, self.model.spiking(elapsed))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), profile.metric_interval_s)

    async def _send(
        self, producer: AIOKafkaProducer, topic: str, key: str, event: dict[str, object]
    ) -> None:
        await producer.send(topic, json.dumps(event).encode(), key=key.encode())
        self.sent += 1

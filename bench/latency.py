"""Latency: a spiking sample's event time → the incident ``opened`` on fireline.incidents.

Starts the embedded broker and a real ``fireline run`` worker, sends background
metric samples at ``--rate`` events/s over ``--series`` latency series (event
time = send time), warms up ``--probes`` probe series, then spikes one probe at a
time (one every two seconds) and reads the incidents topic: for each ``opened``
incident, the latency is its arrival minus ``last_seen`` (the event time of the
sample that raised it). Prints p50/p99/max and the worker's own
``fireline_detection_to_incident_seconds`` histogram.

    .venv/bin/python bench/latency.py [--rate 10000] [--series 50000] [--spikes 40]

On the 2-core development machine, which also runs the producer and the broker,
the worker cannot keep up with 10,000 ev/s while a producer competes for the same
cores; scale down with --rate and say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).parent))

import throughput

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port

TOPICS = throughput.TOPICS


def sample(series: str, value: float) -> bytes:
    body = {
        "timestamp": time.time(),
        "name": "latency_ms",
        "value": round(value, 2),
        "labels": {"service": series},
    }
    return json.dumps(body).encode()


async def background(
    producer: AIOKafkaProducer, rate: float, series: int, stop: asyncio.Event
) -> int:
    """Samples of ``series`` normal series at ``rate`` per second until ``stop``."""
    rng = random.Random(1)
    sent, started, tick = 0, time.perf_counter(), 0.02
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate) - sent
        for _ in range(max(0, due)):
            name = f"bg-{rng.randrange(series)}"
            await producer.send(TOPICS.metrics, sample(name, rng.gauss(50, 3)), key=name.encode())
        sent += max(0, due)
        await asyncio.sleep(tick)
    return sent


async def probes(producer: AIOKafkaProducer, count: int, spikes: int) -> None:
    """Warm up ``count`` probe series (40 points each), then spike them one by one."""
    rng = random.Random(2)
    for _ in range(40):
        for p in range(count):
            await producer.send(TOPICS.metrics, sample(f"probe-{p}", rng.gauss(50, 3)), key=b"p")
        await asyncio.sleep(0.05)
    for s in range(spikes):
        name = f"probe-{s % count}"
        for _ in range(5):  # consecutive spiking points raise the alarm
            await producer.send(TOPICS.metrics, sample(name, 400.0), key=name.encode())
            await producer.flush()
            await asyncio.sleep(0.01)
        await asyncio.sleep(2.0)


async def opened(bootstrap: str, want: int, found: list[float], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        TOPICS.incidents,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        while len(found) < want and not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            arrived = time.time()
            for records in batches.values():
                for record in records:
                    incident = json.loads(record.value)
                    if incident["transition"] == "opened":
                        found.append(arrived - incident["last_seen"])
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace, bootstrap: str) -> tuple[list[float], int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    stop = asyncio.Event()
    found: list[float] = []
    reader = asyncio.create_task(opened(bootstrap, args.spikes, found, stop))
    feeder = asyncio.create_task(background(producer, args.rate, args.series, stop))
    try:
        await asyncio.wait_for(probes(producer, args.probes, args.spikes), timeout=600)
        deadline = time.perf_counter() + 10
        while len(found) < args.spikes and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        sent = await feeder
        await reader
        await producer.stop()
    return found, sent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--spikes", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with EmbeddedBroker(free_port()) as broker:
        asyncio.run(create_topics(broker.bootstrap_servers, TOPICS.all(), args.partitions))
        with throughput.running_worker(broker.url, "bench-latency", {}) as url:
            deadline = time.perf_counter() + 300
            while throughput._total(url, "fireline_ready") < 1:  # joined, topics there
                if time.perf_counter() > deadline:
                    raise SystemExit("the worker was not ready in 300 s")
                time.sleep(0.5)
            started = time.perf_counter()
            found, sent = asyncio.run(run(args, broker.bootstrap_servers))
            elapsed = time.perf_counter() - started
            histogram = throughput.histogram(url, "fireline_detection_to_incident_seconds")
    print(
        f"background {sent / elapsed:,.0f} ev/s over {args.series:,} series (asked {args.rate:,.0f});"
        f" {len(found)} of {args.spikes} spikes opened an incident"
    )
    if found:
        q = statistics.quantiles(found, n=100, method="inclusive")
        print(
            f"event → incident opened: p50 {1000 * q[49]:.0f} ms, p99 {1000 * q[98]:.0f} ms, "
            f"max {1000 * max(found):.0f} ms"
        )
    print(f"worker's fireline_detection_to_incident_seconds: {histogram}")


if __name__ == "__main__":
    main()

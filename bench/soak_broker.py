"""The broker soak (``bench/soak.py --broker``): a real worker under churn, minute by minute.

Wall-clock time, event time = send time. Each minute ``--new-per-minute`` pods
appear (each lives ``--pod-minutes``) and ``--rate`` samples/s spread over the
live ones; ``--spikes`` fresh probe series are warmed up early in the minute
(40 points each) and spiked at second 40. Per minute: the worker's RSS (from
/proc), the spikes' event → incident percentiles (the incident read from the
incidents topic minus the event time of the sample that raised it), the series
the worker holds, its lag, and the record counts of its state changelog topics.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from latency import DETECTIONS, SPIKE_POINTS, Run, sample, watch
from throughput import TOPICS
from workers import Worker

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from agents.service.app import DETECTOR_TABLE, INCIDENT_TABLE, STEPS_TABLE

APP_ID = "bench-soak"
STATE_TOPICS = [
    f"{APP_ID}-{table}-changelog" for table in (DETECTOR_TABLE, INCIDENT_TABLE, STEPS_TABLE)
]


async def feed(producer: AIOKafkaProducer, args: argparse.Namespace, run: Run) -> None:
    """Background samples over the live pods, plus each minute's probes, until stopped."""
    rng = random.Random(1)
    started = time.perf_counter()
    sent = 0
    warmed: dict[str, int] = {}  # probe → points sent
    spiked: set[int] = set()  # minutes whose probes spiked
    while not run.stop.is_set():
        elapsed = time.perf_counter() - started
        minute, second = int(elapsed // 60), elapsed % 60
        first = max(0, (minute - args.pod_minutes + 1) * args.new_per_minute)
        last = (minute + 1) * args.new_per_minute
        due = int(elapsed * args.rate) - sent
        for _ in range(max(0, due)):
            pod = rng.randrange(first, last)
            name = f"api-{pod}"
            await producer.send(TOPICS.metrics, sample(name, rng.gauss(50, 3)), key=name.encode())
        sent += max(0, due)
        run.sent += max(0, due)
        probes = [f"probe-m{minute}-{k}" for k in range(args.spikes)]
        if second < 20:  # warm-up: 40 points over the first 20 s of the minute
            points = min(40, int(second * 2) + 1)
            for name in probes:
                for _ in range(points - warmed.get(name, 0)):
                    value = rng.gauss(50, 3)
                    await producer.send(TOPICS.metrics, sample(name, value), key=name.encode())
                    run.sent += 1
                warmed[name] = points
        elif second >= 40 and minute not in spiked:
            spiked.add(minute)
            for name in probes:
                for _ in range(SPIKE_POINTS):
                    await producer.send(TOPICS.metrics, sample(name, 400.0), key=name.encode())
                run.sent += SPIKE_POINTS
                await producer.flush()
        await asyncio.sleep(0.01)


async def state_sizes(consumer: AIOKafkaConsumer) -> list[int]:
    """Records in each state changelog topic (end offsets summed over partitions)."""
    await consumer.topics()
    sizes = []
    for topic in STATE_TOPICS:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        sizes.append(sum(ends.values()))
    return sizes


def latencies(run: Run, minute: int) -> str:
    found = [
        s.read_at - s.raised_by
        for name, s in run.spikes.items()
        if name.startswith(f"probe-m{minute}-") and s.read_at
    ]
    if not found:
        return f"{'-':>6} {'-':>6} {0:>3}"
    return f"{1000 * statistics.median(found):>6.0f} {1000 * max(found):>6.0f} {len(found):>3}"


async def soak(args: argparse.Namespace, bootstrap: str, worker: Worker) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    sizes_consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await sizes_consumer.start()
    run = Run()
    watcher = asyncio.create_task(watch(bootstrap, run))
    feeder = asyncio.create_task(feed(producer, args, run))
    rss: list[float] = []
    print(
        "minute  RSS MB  p50 ms  max ms  n  series  lag  consumed/s  "
        "detector-state  incident-state  playbook-steps"
    )
    try:
        started, consumed_before = time.perf_counter(), 0.0
        for minute in range(args.minutes):
            # Read each minute's figures 5 s into the next, after its spikes' incidents.
            await asyncio.sleep(max(0.0, started + 60 * (minute + 1) + 5 - time.perf_counter()))
            worker.check_alive()
            text = await asyncio.to_thread(worker.metrics)
            consumed = worker.total("fireline_events_consumed_total", text)
            rss.append(worker.rss_mb())
            sizes = await state_sizes(sizes_consumer)
            print(
                f"{minute + 1:>6}  {rss[-1]:>6.0f}  {latencies(run, minute)}  "
                f"{worker.total('fireline_series_tracked', text):>6.0f}  "
                f"{run.sent - consumed:>4.0f}  {(consumed - consumed_before) / 60:>10,.0f}  "
                + "  ".join(f"{n:>14,}" for n in sizes),
                flush=True,
            )
            consumed_before = consumed
    finally:
        run.stop.set()
        await feeder
        await watcher
        await sizes_consumer.stop()
        await producer.stop()
    return rss


def run(args: argparse.Namespace) -> None:
    """The broker soak; ``args`` as parsed by bench/soak.py."""
    env = {
        "FIRELINE_DETECTION__IDLE_TTL_S": str(args.idle_ttl),
        "FIRELINE_DETECTION__STATE_TTL_S": str(args.state_ttl),
    }
    with EmbeddedBroker(free_port()) as broker:
        asyncio.run(create_topics(broker.bootstrap_servers, [*TOPICS.all(), DETECTIONS], 4))
        with Worker(broker.url, APP_ID, env) as worker:
            ready = worker.wait_ready()
            print(
                f"worker ready in {ready:.1f} s; {args.rate:,} samples/s, "
                f"{args.new_per_minute:,} new series a minute, each living {args.pod_minutes} min; "
                f"{args.spikes} spikes a minute; idle TTL {args.idle_ttl:.0f} s, "
                f"state TTL {args.state_ttl:.0f} s"
            )
            rss = asyncio.run(soak(args, broker.bootstrap_servers, worker))
    half = rss[len(rss) // 2 :]
    slope = (half[-1] - half[0]) / max(1, len(half) - 1)
    whole = (rss[-1] - rss[0]) / max(1, len(rss) - 1)
    print(
        f"RSS slope: {slope:+.2f} MB a minute over the second half, {whole:+.2f} over the run "
        f"({args.new_per_minute:,} new series a minute)"
    )

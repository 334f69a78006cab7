"""Latency: a spiking sample's event time → the incident ``opened`` on the incidents topic.

Starts the embedded broker and a real ``fireline run`` worker, waits until it is
ready (/readyz), sends background latency samples at ``--rate`` events/s over
``--series`` series (event time = send time), warms up one probe series per
spike, waits until the worker has consumed everything sent (a positive sign,
read from its /metrics), then spikes the probes one at a time (``--every``
seconds apart). It reads the detections and incidents topics as they are
written and reports, per spike, the two hops and the whole:

  sample → detection   the sample's event time → the detection record's broker
                       timestamp (fetch, validation, detector, publish)
  detection → incident the detection record → the incident record (the incident
                       manager's fetch of the detections topic, its work, publish)
  event → incident     the sample's event time → the incident read by this bench

and the worker's own ``fireline_detection_to_incident_seconds`` histogram (event
time → publish) and its consumer lag on the metrics topic when the spikes ran.

    .venv/bin/python bench/latency.py [--rate 10000] [--series 50000] [--spikes 40]

The producer, the broker and the worker share the machine's cores: if the worker
falls behind the rate (its lag grows), the latencies measure the lag, not the
pipeline; the bench says so, and a lower --rate is the honest figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).parent))

from throughput import TOPICS
from workers import Worker, format_histogram

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from agents.settings import Topics

DETECTIONS = Topics().detections  # the bench leaves the internal topic its default name
SPIKE_POINTS = 5  # consecutive spiking points (LatencySpike raises after 3)


def sample(service: str, value: float) -> bytes:
    body = {
        "timestamp": time.time(),
        "name": "latency_ms",
        "value": round(value, 2),
        "labels": {"service": service},
    }
    return json.dumps(body).encode()


@dataclass
class Spike:
    """What the bench saw of one probe's spike (wall-clock seconds)."""

    detection_at: float = 0.0  # broker timestamp of the detection record
    incident_at: float = 0.0  # broker timestamp of the incident record
    read_at: float = 0.0  # when this bench read the incident
    raised_by: float = 0.0  # event time of the sample that raised it (incident's last_seen)


@dataclass
class Run:
    """The state of one bench run, shared by its tasks."""

    spikes: dict[str, Spike] = field(default_factory=dict)
    sent: int = 0  # background and probe samples sent
    started: float = field(default_factory=time.perf_counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def background(producer: AIOKafkaProducer, rate: float, series: int, run: Run) -> int:
    """Samples of ``series`` normal series at ``rate`` per second until told to stop."""
    rng = random.Random(1)
    sent, started = 0, time.perf_counter()
    while not run.stop.is_set():
        due = int((time.perf_counter() - started) * rate) - sent
        for _ in range(max(0, due)):
            name = f"bg-{rng.randrange(series)}"
            await producer.send(TOPICS.metrics, sample(name, rng.gauss(50, 3)), key=name.encode())
        sent += max(0, due)
        run.sent += max(0, due)
        await asyncio.sleep(0.01)
    return sent


async def warm_up(producer: AIOKafkaProducer, probes: int, run: Run) -> None:
    """40 normal points on each probe series (more than LatencySpike's warm-up)."""
    rng = random.Random(2)
    for _ in range(40):
        for p in range(probes):
            name = f"probe-{p}"
            await producer.send(TOPICS.metrics, sample(name, rng.gauss(50, 3)), key=name.encode())
        run.sent += probes
        await asyncio.sleep(0.05)
    await producer.flush()


async def spike(producer: AIOKafkaProducer, probes: int, every_s: float, run: Run) -> None:
    """Spike each probe once, ``every_s`` apart (one incident each)."""
    for p in range(probes):
        name = f"probe-{p}"
        for _ in range(SPIKE_POINTS):
            await producer.send(TOPICS.metrics, sample(name, 400.0), key=name.encode())
            await producer.flush()
            await asyncio.sleep(0.01)
        run.sent += SPIKE_POINTS
        await asyncio.sleep(every_s)


async def watch(bootstrap: str, run: Run) -> None:
    """Record the probes' detection and incident records as they are written."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata partitions_for_topic reads
        partitions = [
            TopicPartition(topic, p)
            for topic in (DETECTIONS, TOPICS.incidents)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        while not run.stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            read_at = time.time()
            for tp, records in batches.items():
                for record in records:
                    _note(run, tp.topic, json.loads(record.value), record.timestamp / 1000, read_at)
    finally:
        await consumer.stop()


def _note(run: Run, topic: str, body: dict, written_at: float, read_at: float) -> None:
    if topic == DETECTIONS:
        detection = body.get("detection") or {}
        service = detection.get("labels", {}).get("service", "")
        if service.startswith("probe-") and not detection["cleared"] and not detection["refresh"]:
            entry = run.spikes.setdefault(service, Spike())
            entry.detection_at = entry.detection_at or written_at
        return
    service = body.get("subject_key", "").removeprefix("service:")
    if service.startswith("probe-") and body["transition"] == "opened":
        entry = run.spikes.setdefault(service, Spike())
        entry.incident_at, entry.read_at, entry.raised_by = written_at, read_at, body["last_seen"]


async def caught_up(worker: Worker, run: Run, timeout_s: float) -> None:
    """Wait until the worker has consumed every sample sent before this call."""
    target, consumed = run.sent, 0.0
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        consumed = await asyncio.to_thread(worker.total, "fireline_events_consumed_total")
        if consumed >= target:
            return
        await asyncio.sleep(0.25)
    raise SystemExit(
        f"the worker consumed {consumed:,.0f} of {target:,} samples in {timeout_s:.0f} s: "
        "it cannot keep up with this rate here; lower --rate"
    )


async def bench(args: argparse.Namespace, bootstrap: str, worker: Worker) -> tuple[Run, dict]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    run = Run()
    watcher = asyncio.create_task(watch(bootstrap, run))
    feeder = asyncio.create_task(background(producer, args.rate, args.series, run))
    stats: dict[str, float] = {}
    try:
        await asyncio.sleep(args.settle / 2)  # the background fills the worker's series first
        quiet = await _usage(worker)
        await asyncio.sleep(args.settle / 2)  # then the worker's cost of the background alone
        stats["quiet_us_per_event"] = _us_per_event(quiet, await _usage(worker))
        await warm_up(producer, args.spikes, run)
        await caught_up(worker, run, timeout_s=120)
        consumed = await asyncio.to_thread(worker.total, "fireline_events_consumed_total")
        cpu, started = worker.cpu_seconds(), time.perf_counter()
        await spike(producer, args.spikes, args.every, run)
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            if sum(1 for s in run.spikes.values() if s.read_at) >= args.spikes:
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        now_consumed = await asyncio.to_thread(worker.total, "fireline_events_consumed_total")
        stats |= {
            "consumed_rate": (now_consumed - consumed) / elapsed,
            "lag_after": run.sent - now_consumed,
            "cpu": (worker.cpu_seconds() - cpu) / elapsed,
        }
    finally:
        run.stop.set()
        stats["sent_rate"] = await feeder / (time.perf_counter() - run.started)
        await watcher
        await producer.stop()
    return run, stats


async def _usage(worker: Worker) -> tuple[float, float]:
    """The worker's CPU seconds and events consumed so far."""
    consumed = await asyncio.to_thread(worker.total, "fireline_events_consumed_total")
    return worker.cpu_seconds(), consumed


def _us_per_event(before: tuple[float, float], after: tuple[float, float]) -> float:
    events = after[1] - before[1]
    return 1e6 * (after[0] - before[0]) / events if events else float("nan")


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    if len(values) == 1:
        return f"{1000 * values[0]:.0f} ms (one)"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {1000 * q[49]:>5.0f} ms  p99 {1000 * q[98]:>5.0f} ms  max {1000 * max(values):>5.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=10_000.0, help="background samples/s")
    parser.add_argument("--series", type=int, default=50_000, help="background series")
    parser.add_argument("--spikes", type=int, default=40, help="probe series, one spike each")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between spikes")
    parser.add_argument("--settle", type=float, default=10.0, help="background before probes")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--env", action="append", default=[], help="worker setting, NAME=VALUE (repeatable)"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with EmbeddedBroker(free_port()) as broker:
        topics = [*TOPICS.all(), DETECTIONS]
        asyncio.run(create_topics(broker.bootstrap_servers, topics, args.partitions))
        with Worker(broker.url, "bench-latency", env) as worker:
            ready = worker.wait_ready()
            run, stats = asyncio.run(bench(args, broker.bootstrap_servers, worker))
            worker.check_alive()
            histogram = format_histogram(worker.histogram("fireline_detection_to_incident_seconds"))
    spikes = [s for s in run.spikes.values() if s.read_at]
    print(
        f"worker ready {ready:.1f} s after launch; background {stats['sent_rate']:,.0f} ev/s over "
        f"{args.series:,} series (asked {args.rate:,.0f}); worker consumed "
        f"{stats['consumed_rate']:,.0f} ev/s during the spikes at {stats['cpu']:.2f} CPU, "
        f"lag after {stats['lag_after']:,.0f}"
    )
    print(
        f"worker CPU per event: {stats['quiet_us_per_event']:.0f} µs on the background alone "
        f"(the second half of --settle), {1e6 * stats['cpu'] / stats['consumed_rate']:.0f} µs "
        "during the spikes (incidents and their playbooks included)"
    )
    print(f"{len(spikes)} of {args.spikes} spikes opened an incident")
    hops = [s for s in spikes if s.detection_at]
    print("sample → detection   ", percentiles([s.detection_at - s.raised_by for s in hops]))
    print("detection → incident ", percentiles([s.incident_at - s.detection_at for s in hops]))
    print("incident → this bench", percentiles([s.read_at - s.incident_at for s in spikes]))
    print("event → incident     ", percentiles([s.read_at - s.raised_by for s in spikes]))
    print(f"worker's fireline_detection_to_incident_seconds: {histogram}")


if __name__ == "__main__":
    main()

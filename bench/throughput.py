"""Throughput: the fireline worker against a bare aiokafka consumer, in one run.

Produces N events to the embedded broker: 75% metric samples over 1,000 series
(half latency, half CPU), 25% prediction logs with 10 features; 0.1% of all
events are malformed, and five latency series spike near the end. Then it
measures the sustained rate of

  (a) a bare aiokafka consumer that only JSON-decodes every event (before and,
      as (a'), after the workers: its own rate moves; the ratios use the mean),
  (b) a real `fireline run` worker process with every detector on (validation,
      dead-lettering, a detector per metric series, the prediction-log monitors,
      incidents, playbooks),
  (b') the same with only the latency detector (the ingest path's cost), and
  (c) a stock per-event Faust agent (`async for value in stream`) on the first
      --stock-events events (it is slow; its rate is steady long before the end),

each from its first consumed event to its last, and prints them and the ratios.
The worker's progress is read from its own /metrics counter.

    .venv/bin/python bench/throughput.py [--events 400000] [--partitions 4] [--stock-events 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from agents.settings import Topics

TOPICS = Topics(
    predictions="bench.predictions",
    labels="bench.labels",
    metrics="bench.metrics",
    incidents="bench.incidents",
    actions="bench.actions",
    dead_letter="bench.dead-letter",
)


SERIES = 1000  # metric series: half latency, half CPU
FEATURES = 10  # per prediction


def events(n: int, seed: int = 1) -> list[tuple[str, bytes, bytes]]:
    """75% metric samples over 1,000 series, 25% predictions with 10 features, 0.1% malformed."""
    rng = random.Random(seed)
    out = []
    t0 = 1795255200.0
    spike_from = int(n * 0.9)
    for i in range(n):
        if i % 1000 == 999:  # malformed: a string where a number belongs
            body: dict[str, object] = {"timestamp": t0, "name": "latency_ms", "value": "12ms"}
            out.append((TOPICS.metrics, b"bad", json.dumps(body).encode()))
        elif i % 4:
            series = (i - i // 4) % SERIES
            latency = series % 2 == 1
            value = rng.gauss(50, 3) * (8 if latency and series < 10 and i > spike_from else 1)
            body = {
                "timestamp": t0 + i * 0.001,
                "name": "latency_ms" if latency else "cpu_utilization",
                "value": round(value, 2),
                "labels": {"service": f"svc-{series}", "region": "eu-west-1"},
            }
            out.append((TOPICS.metrics, f"svc-{series}".encode(), json.dumps(body).encode()))
        else:
            features: dict[str, object] = {
                f"x{j}": round(rng.gauss(j, 1), 3) for j in range(FEATURES - 2)
            }
            features["amount"] = round(rng.lognormvariate(3.6, 1.1), 2)
            features["country"] = rng.choice(("DE", "FR", "IT"))
            body = {
                "timestamp": t0 + i * 0.001,
                "model": "fraud",
                "model_version": "7",
                "prediction_id": f"p-{i}",
                "features": features,
                "prediction": round(rng.random(), 4),
                "latency_ms": round(rng.gauss(12, 1), 2),
            }
            out.append((TOPICS.predictions, f"fraud-{i % 8}".encode(), json.dumps(body).encode()))
    return out


async def produce(bootstrap: str, batch: list[tuple[str, bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        for topic, key, value in batch:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return len(batch) / (time.perf_counter() - started)


async def bare_consumer(bootstrap: str, n: int, group: str) -> tuple[float, float]:
    consumer = AIOKafkaConsumer(
        TOPICS.metrics,
        TOPICS.predictions,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        max_partition_fetch_bytes=8 << 20,
    )
    launched = time.perf_counter()
    await consumer.start()
    count, first = 0, 0.0
    loads = json.loads
    try:
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if not first:
                    first = time.perf_counter()
                for record in records:
                    loads(record.value)
                count += len(records)
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - first), first - launched


# The worker with only the foundation's latency detector, for the ingest-path figure.
LATENCY_ONLY = {
    "FIRELINE_DETECTION__WATCH_OTHER_METRICS": "false",
    "FIRELINE_DETECTION__WATCH_PREDICTIONS": "false",
}


@contextlib.contextmanager
def running_worker(
    broker_url: str, app_id: str, extra_env: dict[str, str], env_out: dict[str, float] | None = None
) -> Iterator[str]:
    """A `fireline run` worker process on the bench topics; yields its /metrics URL."""
    port = free_port()
    env = {
        **os.environ,
        **extra_env,
        "FIRELINE_BROKER_URL": broker_url,
        "FIRELINE_APP_ID": app_id,
        "FIRELINE_DATA_DIR": tempfile.mkdtemp(prefix="fireline-bench-"),
        "FIRELINE_HTTP_HOST": "127.0.0.1",
        "FIRELINE_HTTP_PORT": str(port),
        "FIRELINE_WORKER__SESSION_TIMEOUT_S": "3",
        "FIRELINE_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
        **{f"FIRELINE_TOPICS__{k.upper()}": v for k, v in TOPICS.model_dump().items()},
    }
    launched = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli.main", "run", "--loglevel", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,  # the console chat sink prints each incident here
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if env_out is not None:
        env_out["launched"] = launched
    try:
        yield f"http://127.0.0.1:{port}/metrics"
        if process.poll() is not None:
            raise SystemExit(f"worker exited with {process.returncode}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:  # e.g. stuck on a broker that is gone
            process.kill()
            process.wait()


# How often the worker's progress is read from /metrics. Each read renders the whole
# registry on the worker's event loop (~7 ms with every detector's metrics): read every
# 0.1 s, that was ~7% of the loop's time, the bench slowing what it measures (Prometheus
# reads every 15 s). So it reads often only where it matters: until the first event
# (the start), and near the end, which it expects from the rate so far (half the time
# left, at least FINE_POLL_S and at most COARSE_POLL_S apart): ~20 reads instead of
# ~150. Each rate is from two reads (count and time together), so the coarse middle
# loses nothing; the end is seen up to FINE_POLL_S late unless the rate more than
# doubles in its last second.
FINE_POLL_S = 0.05
COARSE_POLL_S = 1.0


def next_poll_s(consumed: float, n: int, first_n: float, elapsed_s: float) -> float:
    """How long to wait before reading the worker's progress again."""
    if not consumed or elapsed_s <= 0 or consumed <= first_n:
        return FINE_POLL_S
    left_s = (n - consumed) / ((consumed - first_n) / elapsed_s)
    return min(COARSE_POLL_S, max(FINE_POLL_S, left_s / 2))


def worker_rate(
    broker_url: str, n: int, app_id: str, extra_env: dict[str, str], timeout_s: float = 300.0
) -> tuple[float, float, str]:
    started: dict[str, float] = {}
    with running_worker(broker_url, app_id, extra_env, started) as url:
        launched = started["launched"]
        first_t = first_n = 0.0
        reads = 0
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            consumed = _total(url, "fireline_events_consumed_total")
            now = time.perf_counter()
            if first_t:
                reads += 1
            if consumed and not first_t:
                first_t, first_n = now, consumed
            if consumed >= n:
                rate = (consumed - first_n) / (now - first_t)
                return (
                    rate,
                    first_t - launched,
                    what_it_did(url, now) + f" ({reads} reads of /metrics while consuming)",
                )
            time.sleep(next_poll_s(consumed, n, first_n, now - first_t))
        raise SystemExit(f"worker did not consume {n} events in {timeout_s}s")


def what_it_did(url: str, drained_at: float, wait_s: float = 30.0) -> str:
    """Dead letters, incident events and playbook actions, once the actions came.

    Playbooks run after the input drained (one incident at a time per playbook
    owner, the first paying matplotlib's import for its chart): wait for the
    first action, then until none came for 3 s, at most ``wait_s``.
    """
    actions, changed = 0.0, time.perf_counter()
    while time.perf_counter() - drained_at < wait_s:
        now_actions = _total(url, "fireline_actions_total")
        if now_actions != actions:
            actions, changed = now_actions, time.perf_counter()
        elif actions and time.perf_counter() - changed > 3.0:
            break
        time.sleep(0.2)
    came = (
        f"the last {changed - drained_at:.1f}s after the input drained"
        if actions
        else f"none within {wait_s:.0f}s"
    )
    return (
        f"dead-lettered {_total(url, 'fireline_events_invalid_total'):.0f}, "
        f"incident events {_total(url, 'fireline_incident_events_total'):.0f}, "
        f"actions {actions:.0f} ({came})"
    )


def histogram(url: str, name: str) -> str:
    """A Prometheus histogram of the worker as ``count, ≤bound: cumulative, ...``."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return "unreadable"
    buckets = [
        line.split('le="', 1)[1].split('"', 1)[0] + ": " + line.rsplit(" ", 1)[1].split(".")[0]
        for line in text.splitlines()
        if line.startswith(f"{name}_bucket{{")
    ]
    return ", ".join(f"≤{b}" for b in buckets) or "empty"


def _total(url: str, name: str) -> float:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


def stock_agent_rate(bootstrap: str, n: int) -> float:
    script = Path(__file__).with_name("stock_agent.py")
    topics = f"{TOPICS.metrics},{TOPICS.predictions}"
    result = subprocess.run(
        [sys.executable, str(script), bootstrap, topics, str(n)],
        capture_output=True,
        timeout=600,
        check=True,
    )
    return float(json.loads(result.stdout.decode().strip().splitlines()[-1])["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--stock-events", type=int, default=50_000, help="0 skips the stock agent")
    args = parser.parse_args()
    with EmbeddedBroker(free_port()) as broker:
        asyncio.run(create_topics(broker.bootstrap_servers, TOPICS.all(), args.partitions))
        batch = events(args.events)
        produced = asyncio.run(produce(broker.bootstrap_servers, batch))
        print(
            f"produced {args.events:,} events ({args.partitions} partitions/topic) at {produced:,.0f}/s"
        )
        # The bare consumer's own rate moves by up to a third between runs on this
        # machine (64k-92k events/s): it is measured before and after the workers,
        # and the ratios are to the mean of the two.
        bare_before, bare_start = asyncio.run(
            bare_consumer(broker.bootstrap_servers, args.events, "bench-bare-before")
        )
        print(
            f"(a) bare aiokafka + json.loads : {bare_before:>10,.0f} events/s  (first event {bare_start:.1f}s after start)"
        )
        fireline, fl_start, did = worker_rate(broker.url, args.events, "bench-fireline", {})
        print(
            f"(b) fireline worker, all detectors: {fireline:>7,.0f} events/s  (first event {fl_start:.1f}s after launch)"
        )
        print(f"    the worker {did}")
        latency, _, did = worker_rate(broker.url, args.events, "bench-latency-only", LATENCY_ONLY)
        print(f"(b') latency detector only       : {latency:>10,.0f} events/s")
        print(f"    the worker {did}")
        bare_after, _ = asyncio.run(
            bare_consumer(broker.bootstrap_servers, args.events, "bench-bare-after")
        )
        bare = (bare_before + bare_after) / 2
        print(
            f"(a') bare again, after the workers: {bare_after:>7,.0f} events/s  (mean of the two: {bare:,.0f})"
        )
        if args.stock_events:
            stock = stock_agent_rate(broker.bootstrap_servers, args.stock_events)
            print(
                f"(c) stock per-event Faust agent: {stock:>10,.0f} events/s  (first {args.stock_events:,} events)"
            )
        print(
            f"ratio fireline / bare          : {fireline / bare:.2f}  (all detectors on; target >= 0.50)"
        )
        print(f"ratio latency-only / bare      : {latency / bare:.2f}")
        if args.stock_events:
            print(f"ratio stock agent / bare       : {stock / bare:.2f}")


if __name__ == "__main__":
    main()

"""Scale-out: CPU per event with one worker and with two, and no duplicates while one joins.

Starts the embedded broker, a loopback webhook stand-in and one ``fireline run``
worker whose only playbook calls the stand-in for every latency incident
opened. A steady load (``--rate`` samples/s over ``--series`` series, event time =
send time) runs throughout, and a fresh, warmed-up probe series spikes every
``--every`` seconds (one incident each). Phases:

  1. one worker, ``--window`` seconds measured;
  2. a second worker joins the group (the same app id), then ``--window`` seconds
     measured with both;
  3. the second worker leaves (SIGTERM) under load; the spikes go on.

CPU-seconds per event = the workers' CPU time (/proc, user + system) over the
window / the events they consumed in it (their /metrics). Equal figures mean
scale-out is linear given the cores. At the end it reads the incidents topic
from the start and counts the ``opened`` events per subject, and the stand-in's
requests per incident: any count above one is a duplicate.

    .venv/bin/python bench/scaleout.py [--rate 1500] [--series 5000] [--window 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).parent))

from latency import DETECTIONS, SPIKE_POINTS, sample
from throughput import TOPICS
from workers import Worker

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port

APP_ID = "bench-scaleout"
PLAYBOOK = """\
name: scaleout-hook
match: {{kinds: [latency_spike], transitions: [opened]}}
steps:
  - webhook: {{url: "{url}"}}
"""


class Hooks:
    """A loopback webhook receiver counting requests per incident id."""

    def __init__(self) -> None:
        self.per_incident: Counter[str] = Counter()
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with hooks.lock:
                    hooks.per_incident[str(body.get("incident_id") or body.get("id"))] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Load:
    """The steady load and the probe spikes, in the background of the phases."""

    def __init__(self, bootstrap: str, args: argparse.Namespace) -> None:
        self.bootstrap = bootstrap
        self.args = args
        self.stop = asyncio.Event()
        self.spiked = 0

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            await asyncio.gather(self._steady(producer), self._probes(producer))
        finally:
            await producer.stop()

    async def _steady(self, producer: AIOKafkaProducer) -> None:
        rng = random.Random(1)
        sent, started = 0, time.perf_counter()
        while not self.stop.is_set():
            due = int((time.perf_counter() - started) * self.args.rate) - sent
            for _ in range(max(0, due)):
                name = f"bg-{rng.randrange(self.args.series)}"
                value = sample(name, rng.gauss(50, 3))
                await producer.send(TOPICS.metrics, value, key=name.encode())
            sent += max(0, due)
            await asyncio.sleep(0.01)

    async def _probes(self, producer: AIOKafkaProducer) -> None:
        """Warm a batch of probes, spike them one every ``--every`` s, repeat."""
        rng = random.Random(2)
        batch = 0
        while not self.stop.is_set():
            names = [f"probe-{batch}-{k}" for k in range(10)]
            for _ in range(40):
                for name in names:
                    value = sample(name, rng.gauss(50, 3))
                    await producer.send(TOPICS.metrics, value, key=name.encode())
                await asyncio.sleep(0.02)
            for name in names:
                if self.stop.is_set():
                    return
                for _ in range(SPIKE_POINTS):
                    await producer.send(TOPICS.metrics, sample(name, 400.0), key=name.encode())
                self.spiked += 1
                await asyncio.sleep(self.args.every)
            batch += 1


def measure(workers: list[Worker], seconds: float) -> tuple[float, float, float]:
    """(CPU-seconds per event, events/s, CPU share) of ``workers`` over ``seconds``."""
    events = sum(w.total("fireline_events_consumed_total") for w in workers)
    cpu = sum(w.cpu_seconds() for w in workers)
    time.sleep(seconds)
    events = sum(w.total("fireline_events_consumed_total") for w in workers) - events
    cpu = sum(w.cpu_seconds() for w in workers) - cpu
    return cpu / max(1.0, events), events / seconds, cpu / seconds


def caught_up(worker: Worker, timeout_s: float) -> None:
    """Wait until the group's lag, as the worker reports it (refreshed every 5 s), is zero."""
    deadline = time.perf_counter() + timeout_s
    time.sleep(6)  # one refresh after the load stopped
    while time.perf_counter() < deadline:
        if worker.total("fireline_consumer_lag") == 0:
            return
        time.sleep(1)
    print(f"the worker still lagged {worker.total('fireline_consumer_lag'):,.0f} records")


async def opened_per_subject(bootstrap: str) -> Counter[str]:
    """``opened`` incident events per subject, over the whole incidents topic."""
    consumer = AIOKafkaConsumer(
        TOPICS.incidents,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"{APP_ID}-reader",
    )
    await consumer.start()
    opened: Counter[str] = Counter()
    try:
        while batches := await consumer.getmany(timeout_ms=3000):
            for records in batches.values():
                for record in records:
                    incident = json.loads(record.value)
                    if incident["transition"] == "opened":
                        opened[incident["subject_key"]] += 1
    finally:
        await consumer.stop()
    return opened


def phases(args: argparse.Namespace, broker: EmbeddedBroker, env: dict[str, str]) -> None:
    load = Load(broker.bootstrap_servers, args)
    loop = asyncio.new_event_loop()
    feeder = threading.Thread(target=loop.run_until_complete, args=(load.run(),), daemon=True)
    with Worker(broker.url, APP_ID, env) as first:
        print(f"worker 1 ready in {first.wait_ready():.1f} s")
        feeder.start()
        time.sleep(args.warm)
        one = measure([first], args.window)
        print(
            f"one worker : {1e6 * one[0]:7.1f} CPU-µs per event, {one[1]:7,.0f} ev/s, "
            f"{one[2]:.2f} CPU"
        )
        with Worker(broker.url, APP_ID, env) as second:
            print(f"worker 2 ready in {second.wait_ready():.1f} s (joined under load)")
            time.sleep(args.warm)
            two = measure([first, second], args.window)
            share = [w.total("fireline_events_consumed_total") for w in (first, second)]
            print(
                f"two workers: {1e6 * two[0]:7.1f} CPU-µs per event, {two[1]:7,.0f} ev/s, "
                f"{two[2]:.2f} CPU (events consumed so far: {share[0]:,.0f} and {share[1]:,.0f})"
            )
        print("worker 2 left (SIGTERM) under load")
        time.sleep(args.after)
        loop.call_soon_threadsafe(load.stop.set)
        feeder.join(60)
        caught_up(first, timeout_s=180)
        time.sleep(10)  # the last spikes' incidents and actions
        first.check_alive()
    print(f"ratio two / one: {two[0] / one[0]:.2f} (CPU per event; 1.00 = linear)")
    print(f"{load.spiked} probe spikes sent")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1500.0)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between spikes")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured per phase")
    parser.add_argument("--warm", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--after", type=float, default=30.0, help="seconds after worker 2 left")
    args = parser.parse_args()
    hooks = Hooks()
    playbooks = Path(tempfile.mkdtemp(prefix="fireline-scaleout-playbooks-"))
    (playbooks / "hook.yaml").write_text(PLAYBOOK.format(url=hooks.url))
    env = {"FIRELINE_PLAYBOOKS_DIR": str(playbooks)}
    try:
        with EmbeddedBroker(free_port()) as broker:
            asyncio.run(create_topics(broker.bootstrap_servers, [*TOPICS.all(), DETECTIONS], 4))
            phases(args, broker, env)
            opened = asyncio.run(opened_per_subject(broker.bootstrap_servers))
    finally:
        hooks.stop()
    probes = {s: n for s, n in opened.items() if s.startswith("service:probe-")}
    duplicated = {s: n for s, n in opened.items() if n > 1}
    repeated = {i: n for i, n in hooks.per_incident.items() if n > 1}
    print(
        f"incidents opened: {sum(opened.values())} over {len(opened)} subjects "
        f"({len(probes)} probes); subjects opened more than once: {len(duplicated)} {duplicated or ''}"
    )
    print(
        f"webhook actions: {sum(hooks.per_incident.values())} over {len(hooks.per_incident)} "
        f"incidents; incidents acted on more than once: {len(repeated)} {repeated or ''}"
    )


if __name__ == "__main__":
    main()

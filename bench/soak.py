"""Soak under series churn: does memory stay flat, does latency hold?

Two modes. Without ``--broker``, at the pipeline level:

Feeds the worker's MetricPipeline (with a DetectorStore over an in-memory table,
as the worker's ``memory://`` tables are) ``--rate`` samples per second of event
time, with ``--new-per-minute`` new series a minute (pod churn: each pod lives
``--pod-minutes``), periodic spikes, for ``--minutes`` of event time, as fast as
the CPU allows. Every event-time minute it prints RSS, live series, series
released, checkpoints in the table and their bytes; at the end, the RSS slope
over the second half (after the idle TTL has started releasing).

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 5000] [--idle-ttl 300] [--state-ttl 900]

With ``--broker`` (bench/soak_broker.py), a real ``fireline run`` worker on the
embedded broker, in wall-clock time: ``--rate`` samples/s with the same churn,
and every minute a few fresh probe series warmed up and spiked; it prints per
minute the worker's RSS, the spikes' event → incident percentiles, the series it
holds, its lag and the state (changelog) topics' sizes; then the RSS slope.

    .venv/bin/python bench/soak.py --broker [--minutes 30] [--rate 2000]
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from pathlib import Path

from agents.kafka.detector_store import DetectorStore
from agents.kafka.state_ttl import tombstone
from agents.pipelines.events import MetricEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.settings import DetectionSettings


class Table:
    """An in-memory table as the worker's: data by key, changelog sends counted."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent = 0

    def send_changelog(self, partition: int, key: bytes, value: object, **_: object) -> None:
        """Counted only: the bench measures the worker's memory, not the broker's."""
        self.sent += 1


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=int, default=5000, help="samples per event-time second")
    parser.add_argument("--new-per-minute", type=int, default=1000)
    parser.add_argument("--pod-minutes", type=int, default=5, help="how long a pod lives")
    parser.add_argument("--idle-ttl", type=float, default=300.0, help="detection.idle_ttl_s")
    parser.add_argument("--state-ttl", type=float, default=900.0, help="detection.state_ttl_s")
    parser.add_argument("--broker", action="store_true", help="a real worker on the broker")
    parser.add_argument("--spikes", type=int, default=5, help="probe spikes a minute (--broker)")
    args = parser.parse_args()
    if args.broker:
        import soak_broker

        soak_broker.run(args)
        return
    settings = DetectionSettings(idle_ttl_s=args.idle_ttl, state_ttl_s=args.state_ttl)
    table = Table()
    pipeline = MetricPipeline(settings, store=DetectorStore(table))
    rng = random.Random(1)
    t0 = 1795255200.0
    released = alarms = tombstoned = 0
    rss: list[float] = []
    started = time.process_time()
    print("minute  RSS MB  live  released  tombstoned  table keys  table MB  alarms")
    for minute in range(args.minutes):
        live_pods = range(
            max(0, (minute - args.pod_minutes + 1) * args.new_per_minute),
            (minute + 1) * args.new_per_minute,
        )
        for second in range(60):
            now = t0 + 60 * minute + second
            spiking = second >= 50 and minute % 5 == 4  # a spike every five minutes
            batch = []
            for i in range(args.rate):
                pod = rng.choice(live_pods)
                value = rng.gauss(50, 3) * (8 if spiking and pod % 97 == 0 else 1)
                batch.append(
                    MetricEvent.model_construct(
                        timestamp=now + i / args.rate,
                        name="latency_ms",
                        value=value,
                        labels={"pod": f"api-{pod}"},
                    )
                )
            alarms += sum(1 for d in pipeline.process(batch, 0) if not d.cleared and not d.refresh)
            if second % 10 == 9:  # the worker's checkpoint timer, and its tombstones
                pipeline.checkpoint()
                tombstoned += tombstone(table, pipeline.take_expired())
        released += sum(pipeline.take_evicted().values())
        rss.append(rss_mb())
        table_mb = sum(len(v) for v in table.data.values()) / 1e6
        print(
            f"{minute + 1:>6}  {rss[-1]:>6.0f}  {len(pipeline.detectors):>4}  {released:>8}  "
            f"{tombstoned:>10}  "
            f"{len(table.data):>10}  {table_mb:>8.1f}  {alarms:>6}",
            flush=True,
        )
    half = rss[len(rss) // 2 :]
    slope = (half[-1] - half[0]) / max(1, len(half) - 1)
    print(
        f"RSS slope over the second half: {slope:+.2f} MB per minute "
        f"({args.new_per_minute:,} new series a minute); "
        f"{time.process_time() - started:.0f} CPU-s for {args.minutes * 60 * args.rate:,} samples"
    )


if __name__ == "__main__":
    main()

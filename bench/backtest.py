"""`fireline backtest` speed: events per second through detectors, incidents and dry playbooks.

Writes the throughput benchmark's events (bench/throughput.py: metric samples
over 1,000 series and prediction events, a latency spike near the end, a few
malformed) to a JSON-lines file, then times, side by side in one run:

- **read**: the file read, validated and merged by event time, nothing else;
- **backtest**: the whole backtest with the shipped playbooks (what the CLI runs).

Each is given in events per second of wall-clock time and per CPU-second (the
machine may be shared: the CPU figure is the one that does not depend on it).
The libraries the detectors import on first use (scipy, scikit-learn for the
domain classifier) are imported before the clock starts: a one-off cost of a
few seconds, not a per-event one. The target (issue 16, with the replay target
of issue 15) is 20,000 events/s.

    .venv/bin/python bench/backtest.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import scipy.stats  # noqa: F401  # imported lazily by the detectors: not part of the timing
import sklearn.ensemble  # likewise (the domain classifier)
import sklearn.inspection
import sklearn.metrics  # noqa: F401
import throughput

from agents.backtest.simulation import Backtest
from agents.recorded.contracts import LineValidator
from agents.recorded.jsonl import read_merged
from agents.recorded.rejects import Rejects
from agents.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"".join(value + b"\n" for _, _, value in throughput.events(args.events)))
        validator = LineValidator(settings.max_event_bytes)

        started, cpu = time.perf_counter(), time.process_time()
        read = sum(1 for _ in read_merged([path], validator, Rejects()))
        read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu

        rejects = Rejects()
        backtest = Backtest(settings, [settings.playbooks_dir])
        started, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(backtest.run(read_merged([path], validator, rejects)))
        run_s, run_cpu = time.perf_counter() - started, time.process_time() - cpu

    steps = sum(s.would_run for s in result.runs[0].steps)
    total = result.events + rejects.count
    print(f"events: {total:,} ({rejects.count:,} rejected), {result.detections} detections,")
    print(f"        {len(result.incidents)} incidents, {steps} steps that would have run")
    print("                          events/s (wall)   events per CPU-second")
    print(f"read + validate + merge : {read / read_s:>12,.0f} {read / read_cpu:>18,.0f}")
    print(
        f"backtest (everything)   : {total / run_s:>12,.0f} {total / run_cpu:>18,.0f}"
        "   (target 20,000)"
    )
    print(f"share of CPU reading    : {read_cpu / run_cpu:.0%}")


if __name__ == "__main__":
    main()

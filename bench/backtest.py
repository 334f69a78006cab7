"""`fireline backtest` speed: events per second through detectors, incidents and dry playbooks.

Writes the throughput benchmark's events (bench/throughput.py: metric samples
over many series and prediction events, a latency spike near the end, a few
malformed) to a JSON-lines file, then times, side by side in one run:

- **read**: the file read, validated and merged by event time, nothing else;
- **backtest**: the whole backtest with the shipped playbooks (what the CLI runs).

The target (issue 16, with the replay target of issue 15) is 20,000 events/s.

    .venv/bin/python bench/backtest.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import throughput

from agents.backtest.simulation import Backtest
from agents.backtest.sources import InputEvent, Rejects, read_event_files
from agents.settings import Settings


async def _stream(events: Iterator[InputEvent]) -> AsyncIterator[InputEvent]:
    for event in events:
        yield event


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

        started = time.perf_counter()
        read = sum(1 for _ in read_event_files([path], Rejects(), settings.max_event_bytes))
        read_s = time.perf_counter() - started

        rejects = Rejects()
        backtest = Backtest(settings, [settings.playbooks_dir])
        started = time.perf_counter()
        events = read_event_files([path], rejects, settings.max_event_bytes)
        result = asyncio.run(backtest.run(_stream(events)))
        run_s = time.perf_counter() - started

    steps = sum(s.would_run for s in result.runs[0].steps)
    print(f"events: {args.events:,} ({rejects.count:,} rejected), {result.detections} detections,")
    print(f"        {len(result.incidents)} incidents, {steps} steps that would have run")
    print(f"read + validate + merge : {read / read_s:>10,.0f} events/s")
    print(f"backtest (everything)   : {result.events / run_s:>10,.0f} events/s  (target 20,000)")
    print(f"share of time reading   : {read_s / run_s:.0%}")


if __name__ == "__main__":
    main()

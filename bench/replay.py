"""Replay speed: `fireline replay predictions` over an 80k-line prediction log.

Writes a log of predictions with 30 features (20 numeric, 10 categorical) and
labels interleaved (each label 20 predictions after its prediction; one line in
five is a label), then times the replay core end to end (read, validate, detect)
with the collector settings `fireline replay predictions` runs with, and prints
lines per second, wall-clock (the headline) and per CPU-second (the machine is
shared), with the detectors fed one event at a time on a prefix for comparison.
The domain classifier's fits run in a child process, as with
`--fit-in-child`; its CPU is read from /proc and counted in the CPU figure.
Starting that child (spawn, imports, scikit-learn) is timed apart: a one-off
cost of the process, not of the lines, but ~5 s of CPU, more than an 80k-line
log's fits, which is why the command fits inline unless told. ``--inline`` fits
in the main process, as the command does by default (scikit-learn imported
apart).

    .venv/bin/python bench/replay.py [--lines 80000] [--features 30] [--inline]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

import scipy.stats  # noqa: F401  # imported lazily by the detectors: not part of the timing

from agents.cli.replay import read_prediction_log, replay_predictions
from agents.pipelines.events import LabelEvent, PredictionEvent
from agents.pipelines.ingest import Record, Validator
from agents.pipelines.offline import fewer_collections
from detectors.drift.domain_classifier import preload_classifier
from detectors.monitor.prediction_log import PredictionLogMonitor
from fireline.child_process import ChildProcess


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (/proc/PID/stat, fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_log(path: Path, lines: int, features: int, seed: int = 1) -> None:
    """Predictions with ``features`` features, a label after every fourth prediction."""
    rng = random.Random(seed)
    t0 = 1795255200.0
    numeric = features * 2 // 3
    with path.open("w", encoding="utf-8") as out:
        written = i = 0
        while written < lines:
            body: dict[str, object] = {
                "timestamp": t0 + i * 0.01,
                "model": "fraud",
                "model_version": "7",
                "prediction_id": f"p-{i}",
                "features": {
                    **{f"n{j}": round(rng.gauss(j, 1), 3) for j in range(numeric)},
                    **{f"c{j}": rng.choice("ABCD") for j in range(features - numeric)},
                },
                "prediction": round(rng.random(), 4),
                "latency_ms": round(rng.gauss(12, 1), 2),
            }
            out.write(json.dumps(body) + "\n")
            written += 1
            if i % 4 == 3 and i >= 20 and written < lines:
                label = {
                    "timestamp": t0 + i * 0.01 + 0.005,
                    "model": "fraud",
                    "prediction_id": f"p-{i - 20}",
                    "label": int(rng.random() < 0.5),
                }
                out.write(json.dumps(label) + "\n")
                written += 1
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=80_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--single", type=int, default=5_000, help="lines fed one at a time")
    parser.add_argument("--inline", action="store_true", help="fit in the main process")
    args = parser.parse_args()
    # The domain classifier imports scikit-learn (and pandas with it) on its first
    # test: a one-off cost of the process, timed apart like SciPy's above.
    import_wall, import_cpu = time.perf_counter(), time.process_time()
    fits = None if args.inline else ChildProcess("classifier", preload_classifier)
    if fits is None:
        for module in ("sklearn.ensemble", "sklearn.metrics", "sklearn.inspection"):
            importlib.import_module(module)
        import_cpu = time.process_time() - import_cpu
    else:
        fits.start().result()  # type: ignore[union-attr]  # a preload was given
        import_cpu = cpu_seconds(fits.pids[0])
    import_wall = time.perf_counter() - import_wall
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        write_log(path, args.lines, args.features)
        contract_cpu = time.process_time()  # pydantic alone, as before the msgspec path
        predictions, labels = Validator(PredictionEvent, 65_536), Validator(LabelEvent, 65_536)
        with path.open("rb") as lines:
            for number, line in enumerate(lines):
                record = Record("log", 0, number, None, line.rstrip(b"\n"))
                (predictions if b"features" in line else labels).validate_one(record).to_record()
        contract_cpu = time.process_time() - contract_cpu
        with fewer_collections():  # as `fireline replay predictions` runs
            started, cpu = time.perf_counter(), time.process_time()
            events = list(read_prediction_log(path))
            read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu
            found = sum(1 for _ in replay_predictions(events, executor=fits))
            elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        child_cpu = cpu_seconds(fits.pids[0]) - import_cpu if fits is not None else 0.0
        if fits is not None:
            fits.close()
        # The old way, one event at a time, once the monitor is past its reference.
        monitor = PredictionLogMonitor()
        for i in range(0, 5_000, 500):
            monitor.process(events[i : i + 500])
        one = events[5_000 : 5_000 + args.single]
        single_started = time.process_time()
        for event in one:
            monitor.process([event])
        single_cpu = time.process_time() - single_started
    where = "inline" if fits is None else "in a child process"
    total_cpu = cpu_s + child_cpu
    print(
        f"replay predictions: {args.lines:,} lines ({args.features} features, labels "
        f"interleaved), {found} detection(s), the classifier's fits {where}\n"
        f"  wall {elapsed:.1f} s = {args.lines / elapsed:,.0f} lines/s "
        f"(read + validate {read_s:.1f} s)\n"
        f"  CPU  {total_cpu:.1f} s = {args.lines / total_cpu:,.0f} lines per CPU-second "
        f"(read + validate {read_cpu:.1f} s, detectors {cpu_s - read_cpu:.1f} s, "
        f"fits in the child {child_cpu:.1f} s)\n"
        f"  read + validate with the pydantic contract alone: {contract_cpu:.1f} s CPU\n"
        f"  one-off import of scikit-learn ({where}), not in the above: {import_wall:.1f} s "
        f"({import_cpu:.1f} s CPU)\n"
        f"  detectors fed one event at a time ({len(one):,} lines after the reference): "
        f"{len(one) / single_cpu:,.0f} lines per CPU-second"
    )


if __name__ == "__main__":
    main()

"""The metric detectors on seeded synthetic streams: false alarms, detection delay, cost.

For each detector: false alarms on long stationary streams of its input family,
then the delay (in points, from the change) on a stream with a change, and the
cost per point fed in 1,000-point batches. The "Metric detectors" figures in
docs/detectors.md come from here. ``--worker`` prints instead the CPU cost per
point of the two detectors a worker runs most (LatencySpike, MetricEnsemble) fed
as a worker feeds them: many series, a few points each per update, in turn
(docs/performance.md).

    .venv/bin/python bench/metric_detectors.py [--points N] [--worker]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from detectors import (
    CountSpike,
    ErrorRatio,
    LatencySpike,
    MetricEnsemble,
    SeasonalBaseline,
    TailLatency,
)
from detectors.base import Detector

BATCH = 1000


def run(detector: Detector, values: np.ndarray, times: np.ndarray | None = None) -> list[int]:
    raised = []
    for start in range(0, values.size, BATCH):
        chunk = slice(start, start + BATCH)
        stamps = None if times is None else times[chunk]
        raised += [
            start + c.index for c in detector.update(values[chunk], stamps).changes if c.raised
        ]
    return raised


def ratios(
    rng: np.random.Generator, n: int, requests: float, rate: np.ndarray | float
) -> np.ndarray:
    trials = np.maximum(rng.poisson(requests, n), 1)
    return rng.binomial(trials, rate) / trials


def worker_cost(series: int = 500, points: int = 600, per_update: int = 3) -> None:
    """CPU µs per point with ``series`` detectors fed ``per_update`` points each in turn."""
    rng = np.random.default_rng(1)
    for make in (LatencySpike, MetricEnsemble):
        values = rng.normal(50, 3, (series, points)).round(2)
        batches = [
            [row[i : i + per_update].tolist() for i in range(0, points, per_update)]
            for row in values
        ]
        times = [
            [1.8e9 + j for j in range(i, i + per_update)] for i in range(0, points, per_update)
        ]
        detectors = [make() for _ in range(series)]
        began = time.process_time()
        for k, stamps in enumerate(times):
            for detector, batch in zip(detectors, batches, strict=True):
                detector.update(batch[k], stamps)
        cost = (time.process_time() - began) / (series * points) * 1e6
        print(
            f"{make.__name__:15} {series} series, {per_update} points per update: "
            f"{cost:.2f} µs of CPU per point"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument(
        "--worker", action="store_true", help="only the worker-like cost of the two defaults"
    )
    args = parser.parse_args()
    if args.worker:
        worker_cost()
        return
    n = args.points
    rng = np.random.default_rng(1)
    day = np.arange(0, n * 60.0, 60.0)
    cpu = 50 + 30 * np.sin(2 * np.pi * day / 86400) + rng.normal(0, 2, n)
    quiet: list[tuple[str, Callable[[], Detector], np.ndarray, np.ndarray | None]] = [
        ("CountSpike Poisson(0.3)", CountSpike, rng.poisson(0.3, n).astype(float), None),
        ("CountSpike Poisson(50)", CountSpike, rng.poisson(50, n).astype(float), None),
        (
            "CountSpike NegBin(mean 20, r=2)",
            CountSpike,
            rng.negative_binomial(2, 2 / 22, n) * 1.0,
            None,
        ),
        ("ErrorRatio 1% of ~2000", ErrorRatio, ratios(rng, n, 2000, 0.01), None),
        ("ErrorRatio 1% of ~5 (zero-heavy)", ErrorRatio, ratios(rng, n, 5, 0.01), None),
        ("TailLatency lognormal", TailLatency, rng.lognormal(np.log(40), 0.3, n), None),
        ("SeasonalBaseline daily sine, 1-min", SeasonalBaseline, cpu, day),
    ]
    print(f"{'stationary stream':38} {'false alarms':>12} {'µs/point':>9}")
    for name, make, values, times in quiet:
        detector = make()
        began = time.perf_counter()
        alarms = run(detector, values, times)
        cost = (time.perf_counter() - began) / values.size * 1e6
        print(f"{name:38} {len(alarms):>12} {cost:>9.2f}")

    change = 5000
    slow = rng.lognormal(np.log(40), 0.3, 2 * change)
    slow[change:][rng.random(change) < 0.03] *= 8
    five_min = np.arange(0, 10 * 86400, 300.0)
    nightly = np.where(five_min // 3600 % 24 == 2, 85.0, 30.0) + rng.normal(0, 2, five_min.size)
    at = int(np.searchsorted(five_min, 8 * 86400 + 14 * 3600))
    nightly[at : at + 12] = 85.0
    changed: list[tuple[str, Detector, np.ndarray, np.ndarray | None, int]] = [
        (
            "CountSpike Poisson 0.3 -> 6",
            CountSpike(),
            np.r_[rng.poisson(0.3, change), rng.poisson(6, 200)].astype(float),
            None,
            change,
        ),
        (
            "ErrorRatio 1% -> 2% of ~2000",
            ErrorRatio(),
            np.r_[ratios(rng, change, 2000, 0.01), ratios(rng, 200, 2000, 0.02)],
            None,
            change,
        ),
        ("TailLatency 3% of requests 8x slower", TailLatency(), slow, None, change),
        ("SeasonalBaseline 85% at 14:00 (day 8)", SeasonalBaseline(), nightly, five_min, at),
    ]
    print(f"\n{'stream with a change':38} {'raised at (points from the change)':>36}")
    for name, detector, values, times, start in changed:
        delays = [i - start for i in run(detector, values, times)]
        print(f"{name:38} {delays!s:>36}")


if __name__ == "__main__":
    main()

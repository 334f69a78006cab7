"""New series: how often a series that only just appeared raises a false alarm.

Under pod churn most series are young, and a young series has little history to
be judged against. For each kind of stationary series, many new series go
through the detector the worker routes them to (by metric name, default
settings), in micro-batches of 10 points, and the bench counts the series that
raised an alarm within ``--points`` points. The default detector
(``MetricEnsemble``) runs twice, side by side: with its level-jump confirmation
(``jump_alarm_fraction``, the default) and without it (0, the rule before). It
then counts how many level shifts of 2 and 3 standard deviations, inside the
envelope, each rule still catches within 200 points. The figures in
docs/detectors.md ("A level jump counts as hot only when ...") come from here.

    PYTHONPATH=. .venv/bin/python bench/new_series.py [--series 100] [--points 3000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from agents.settings import DetectionSettings, DetectorRoute
from detectors.metric.base import MetricDetector
from detectors.metric.ensemble import MetricEnsemble

BATCH = 10  # a few points per series per update, as a worker feeds them

Generator = Callable[[np.random.Generator, int], np.ndarray]

# Metric name (how the worker routes it) -> one stationary series of that kind.
KINDS: dict[str, tuple[str, Generator]] = {
    "latency_ms": ("latency, Gaussian", lambda r, n: np.maximum(1.0, r.normal(45, 2.7, n))),
    "error_rate": ("error ratio", lambda r, n: np.maximum(0.0, r.normal(0.004, 0.001, n))),
    "errors_total": ("error count, Poisson 3", lambda r, n: r.poisson(3, n).astype(float)),
    "cpu_utilization": ("Gaussian", lambda r, n: np.round(r.normal(0.42, 0.03, n), 3)),
    "queue_depth": ("Poisson 20", lambda r, n: r.poisson(20, n).astype(float)),
    "payload_bytes": ("lognormal", lambda r, n: r.lognormal(3, 0.5, n)),
}


def rises(detector: MetricDetector, values: np.ndarray) -> list[int]:
    """Where the alarm rose (not the adoptions of a new level)."""
    found = []
    for start in range(0, values.size, BATCH):
        changes = detector.update(values[start : start + BATCH]).changes
        found += [start + c.index for c in changes if c.raised and not c.adapted]
    return found


def alarmed_series(
    build: Callable[[], MetricDetector], make: Generator, series: int, points: int
) -> int:
    return sum(
        bool(rises(build(), make(np.random.default_rng(seed), points))) for seed in range(series)
    )


def shifts_caught(build: Callable[[], MetricDetector], size: float, at: int, series: int) -> int:
    """Series whose alarm rose within 200 points of a level shift of ``size`` sigmas at ``at``."""
    caught = 0
    for seed in range(series):
        values = np.random.default_rng(10_000 + seed).normal(10.0, 1.0, at + 200)
        values[at:] += size
        caught += any(at <= i < at + 200 for i in rises(build(), values))
    return caught


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100, help="new series of each kind")
    parser.add_argument("--points", type=int, default=3000, help="points of each series")
    args = parser.parse_args()
    settings = DetectionSettings()
    routes = settings.routes()  # the worker's routing by metric name
    by_name: dict[str, DetectorRoute] = {name: r for r in routes for name in r.names}
    default = routes[-1]  # every other metric
    unconfirmed = settings.ensemble.model_copy(update={"jump_alarm_fraction": 0.0})
    rules: dict[str, Callable[[], MetricDetector]] = {
        "confirmed": default.build,
        "unconfirmed": lambda: MetricEnsemble(unconfirmed),
    }
    print(f"new series alarmed within {args.points:,} points (of {args.series} each)")
    started = time.perf_counter()
    for name, (label, make) in KINDS.items():
        route = by_name.get(name, default)
        kind = route.detector.__name__
        if route.detector is MetricEnsemble:
            found = {
                rule: alarmed_series(b, make, args.series, args.points) for rule, b in rules.items()
            }
            figures = f"{found['confirmed']} (without the confirmation: {found['unconfirmed']})"
        else:
            figures = str(alarmed_series(route.build, make, args.series, args.points))
        print(f"  {name:16} {label:24} {kind:16} {figures}")
    print("level shifts inside the envelope caught within 200 points (MetricEnsemble, of 40)")
    for size, at in [(2.0, 150), (2.0, 400), (2.0, 800), (3.0, 150)]:
        caught = {rule: shifts_caught(b, size, at, 40) for rule, b in rules.items()}
        print(
            f"  {size:.0f} sigma at point {at:4}: {caught['confirmed']} "
            f"(without the confirmation: {caught['unconfirmed']})"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

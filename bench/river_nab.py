"""NAB: river's univariate anomaly and drift detectors, scored like fireline's default (bench/nab.py).

Measures whether a river estimator could replace the hand-written ``MetricEnsemble``
(the answer, with the figures, is in docs/detectors.md). Each detector sees every
NAB file one point at a time and scores each point before learning it (the past
only, as the worker does); river's scores are mapped into 0..1 where they are not
already, then scored with bench/nab_scoring.py at the best global threshold per
profile, exactly as bench/nab.py scores fireline's detector.

river is not a fireline dependency; install it for this script only:

    .venv/bin/pip install river==0.26.1
    .venv/bin/python bench/river_nab.py [--nab-dir ../shared/nab]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import nab_scoring

try:
    from river import anomaly, drift, preprocessing
except ImportError:  # pragma: no cover - an actionable message instead of a traceback
    sys.exit("bench/river_nab.py needs river: .venv/bin/pip install river==0.26.1")


def _bounded(score: float) -> float:
    """An unbounded non-negative score mapped monotonically into 0..1."""
    return score / (1.0 + score) if math.isfinite(score) else 1.0


class _OnTarget:
    """river's univariate scorers (GaussianScorer, SAD) score the target ``y``, not ``x``."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer

    def score_one(self, x: dict[str, float]) -> float:
        return float(self.scorer.score_one(None, x["value"]))

    def learn_one(self, x: dict[str, float]) -> None:
        self.scorer.learn_one(None, x["value"])


class _DriftAsScore:
    """A river drift detector as a scorer: 1 at the point where it signals a change, else 0."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.drift = 0.0

    def score_one(self, x: dict[str, float]) -> float:
        self.detector.update(x["value"])  # drift detectors see the point to judge it
        self.drift = 1.0 if self.detector.drift_detected else 0.0
        return self.drift

    def learn_one(self, x: dict[str, float]) -> None:
        """Already learnt in ``score_one``."""


CANDIDATES: dict[str, tuple[Callable[[], Any], Callable[[float], float]]] = {
    # Gaussian over all points seen; 2|CDF - 1/2| is already in 0..1.
    "GaussianScorer (all history)": (
        lambda: _OnTarget(anomaly.GaussianScorer(grace_period=100)),
        float,
    ),
    # Same over the last 1,000 points, closer to MetricEnsemble's windowed baseline.
    "GaussianScorer (window 1,000)": (
        lambda: _OnTarget(anomaly.GaussianScorer(window_size=1000, grace_period=100)),
        float,
    ),
    # |y - mean| / std over all points seen.
    "StandardAbsoluteDeviation": (
        lambda: _OnTarget(anomaly.StandardAbsoluteDeviation()),
        _bounded,
    ),
    # Half-space trees need features in 0..1: a running min-max scaler first.
    "MinMaxScaler | HalfSpaceTrees": (
        lambda: preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42),
        float,
    ),
    # Change detectors: a binary score at the point the change is signalled.
    "drift.ADWIN": (lambda: _DriftAsScore(drift.ADWIN()), float),
    "drift.PageHinkley": (lambda: _DriftAsScore(drift.PageHinkley()), float),
}


def score_file(make: Callable[[], Any], bound: Callable[[float], float], values: Any) -> Any:
    """Per-point scores of one file: score each point, then learn it."""
    detector = make()
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        x = {"value": float(value)}
        out[i] = bound(detector.score_one(x))
        detector.learn_one(x)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "nab"
    parser.add_argument("--nab-dir", type=Path, default=default_dir)
    args = parser.parse_args()

    corpus = nab_scoring.load_corpus(args.nab_dir)
    profiles = nab_scoring.load_profiles(args.nab_dir)
    rows = sum(len(f.values) for f in corpus)
    print(f"river detectors over {len(corpus)} NAB files, {rows:,} rows")
    print(f"{'detector':<32}" + "".join(f"{p.name:>22}" for p in profiles) + f"{'µs/point':>10}")
    for name, (make, bound) in CANDIDATES.items():
        started = time.perf_counter()
        scores = {f.name: score_file(make, bound, f.values) for f in corpus}
        cost = (time.perf_counter() - started) / rows * 1e6
        results = [nab_scoring.score_corpus(corpus, scores, p) for p in profiles]
        cells = "".join(f"{r.normalized:>22.1f}" for r in results)
        print(f"{name:<32}{cells}{cost:>10.1f}")


if __name__ == "__main__":
    main()

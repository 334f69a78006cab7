"""NAB: the service's default metric detector on the Numenta Anomaly Benchmark.

Runs every NAB data file through the replay path (`agents.cli.replay`, the same
detector and settings as the worker, scores from the past only), scores the
result with bench/nab_scoring.py for the three application profiles, and prints
it beside NAB's published scoreboard, with the detector's cost per event.

    .venv/bin/python bench/nab.py [--nab-dir ../shared/nab]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import nab_scoring

from agents.cli.replay import replay_values
from agents.settings import DetectionSettings
from detectors import MetricEnsemble

SCOREBOARD_ROWS = [
    "numenta",
    "ARTime",
    "contextOSE",
    "earthgeckoSkyline",
    "knncad",
    "randomCutForest",
    "null",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "nab"
    parser.add_argument("--nab-dir", type=Path, default=default_dir)
    args = parser.parse_args()

    corpus = nab_scoring.load_corpus(args.nab_dir)
    settings = DetectionSettings()
    scores: dict[str, np.ndarray] = {}
    rows = 0
    started = time.perf_counter()
    for file in corpus:
        values = [float(v) for v in file.values]
        replayed = replay_values(file.timestamps, values, settings)
        scores[file.name] = np.fromiter(
            (r.anomaly_score for r in replayed), np.float64, len(values)
        )
        rows += len(values)
    elapsed = time.perf_counter() - started
    detector_only = _detector_cost(corpus, settings)
    name = MetricEnsemble.__name__
    print(f"fireline default metric detector ({name}) over {len(corpus)} files, {rows:,} rows")
    print(
        f"cost through the replay path: {elapsed / rows * 1e6:.1f} µs per event, one event at a "
        f"time ({rows / elapsed:,.0f} events/s)"
    )
    print(
        "detector alone (best of 3): "
        + ", ".join(f"{us:.1f} µs per point {how}" for how, us in detector_only.items())
    )
    print()
    published = nab_scoring.published_scores(args.nab_dir)
    profiles = nab_scoring.load_profiles(args.nab_dir)
    header = f"{'detector':<30}" + "".join(f"{p.name:>22}" for p in profiles)
    print(header)
    print("-" * len(header))
    ours = [nab_scoring.score_corpus(corpus, scores, p) for p in profiles]
    print(f"{'fireline (this run)':<30}" + "".join(f"{r.normalized:>22.1f}" for r in ours))
    for name in SCOREBOARD_ROWS:
        if name in published:
            cells = "".join(f"{published[name].get(p.name, float('nan')):>22.1f}" for p in profiles)
            print(f"{name + ' (published)':<30}{cells}")
    print()
    for result in ours:
        print(
            f"{result.profile}: threshold {result.threshold:.4f}, windows detected "
            f"{result.tp}/{result.tp + result.fn}, false-positive rows {result.fp}"
        )


def _detector_cost(
    corpus: list[nab_scoring.LabelledFile], settings: DetectionSettings
) -> dict[str, float]:
    """µs per point of the detector alone, fed one value at a time and whole files at once.

    Best of three runs: the development machine is shared, and the best run is the
    one least disturbed by other work.
    """
    values = [file.values.tolist() for file in corpus]
    rows = sum(len(v) for v in values)
    costs = {}
    for how in ("one at a time", "in one batch"):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for series in values:
                detector = MetricEnsemble(settings.ensemble)
                if how == "in one batch":
                    detector.update(series)
                else:
                    for value in series:
                        detector.update(value)
            best = min(best, time.perf_counter() - started)
        costs[how] = best / rows * 1e6
    return costs


if __name__ == "__main__":
    main()

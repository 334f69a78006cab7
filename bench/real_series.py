"""The special-purpose metric detectors on real series: NAB files where they fit.

bench/metric_detectors.py measures them on seeded synthetic streams; this runs
them over the NAB series whose kind they are built for and reports, per
detector, the labelled windows in which their alarm rose, the rises outside
every window (false alarms, per 100,000 points, after NAB's probation), and the
NAB standard score of "a rise is a detection":

- ``CountSpike`` (per-interval counts): the Twitter-mention counts (realTweets)
  and the load balancer's request count (elb_request_count_8c0756);
- ``SeasonalBaseline`` (series that follow the clock): NYC taxi passengers and
  the traffic sensors (realTraffic), bucketed by hour of the week and day;
- ``ErrorRatio``: the CPU utilisation series as ratios (percent / 100), the only
  [0, 1] series NAB has; a stand-in, as NAB has no error ratios;
- ``TailLatency`` needs raw per-request samples, which NAB does not have.

Each file is fed in 1,000-point micro-batches with its timestamps, one detector per
file, defaults only (nothing here is tuned on the labels).

    .venv/bin/python bench/real_series.py [--nab-dir ../shared/nab]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import nab_scoring

from detectors import CountSpike, ErrorRatio, SeasonalBaseline
from detectors.base import Detector

BATCH = 1000


def _epoch(stamps: list[str]) -> np.ndarray:
    return np.array([datetime.fromisoformat(s).timestamp() for s in stamps])


def _rises(detector: Detector, values: np.ndarray, times: np.ndarray) -> list[int]:
    raised = []
    for start in range(0, values.size, BATCH):
        chunk = slice(start, start + BATCH)
        changes = detector.update(values[chunk], times[chunk]).changes
        raised += [start + c.index for c in changes if c.raised]
    return raised


CASES: list[tuple[str, Callable[[], Detector], Callable[[str], bool], float]] = [
    (
        "CountSpike",
        CountSpike,
        lambda name: name.startswith("realTweets/") or "elb_request_count" in name,
        1.0,
    ),
    (
        "SeasonalBaseline (week)",
        lambda: SeasonalBaseline(season="week"),
        lambda name: name == "realKnownCause/nyc_taxi.csv" or name.startswith("realTraffic/"),
        1.0,
    ),
    (
        "SeasonalBaseline (day)",
        SeasonalBaseline,
        lambda name: name == "realKnownCause/nyc_taxi.csv" or name.startswith("realTraffic/"),
        1.0,
    ),
    ("ErrorRatio (CPU % as a ratio)", ErrorRatio, lambda name: "cpu_utilization" in name, 0.01),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "nab"
    parser.add_argument("--nab-dir", type=Path, default=default_dir)
    args = parser.parse_args()
    corpus = nab_scoring.load_corpus(args.nab_dir)
    standard = nab_scoring.load_profiles(args.nab_dir)[0]
    print(
        f"{'detector':32} {'files':>5} {'points':>8} {'windows hit':>12} "
        f"{'false alarms':>12} {'per 100k':>9} {'NAB standard':>13}"
    )
    for label, make, fits, scale in CASES:
        files = [f for f in corpus if fits(f.name)]
        scores: dict[str, np.ndarray] = {}
        hit = windows = false = scored = 0
        for file in files:
            rises = _rises(make(), file.values * scale, _epoch(file.timestamps))
            detections = np.zeros(len(file.values))
            detections[rises] = 1.0
            scores[file.name] = detections
            skip = nab_scoring.probation_length(len(file.values))
            scored += len(file.values) - skip
            windows += len(file.windows)
            hit += sum(any(a <= r <= b for r in rises) for a, b in file.windows)
            false += sum(r >= skip and not any(a <= r <= b for a, b in file.windows) for r in rises)
        result = nab_scoring.score_corpus(files, scores, standard)
        print(
            f"{label:32} {len(files):>5} {scored:>8,} {f'{hit}/{windows}':>12} {false:>12} "
            f"{false / scored * 1e5:>9.0f} {result.normalized:>13.1f}"
        )


if __name__ == "__main__":
    main()

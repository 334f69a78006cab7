"""Cost per event of one ModelMonitor in its monitoring phase (all detectors on).

20 numeric features + 1 categorical (as bench/drift.py), a score and a latency
per event; the warm-up and the reference are fed first and not timed. Reports
the best of --repeats timed passes (the machine is shared: the best is the
least disturbed) per micro-batch size, and the domain classifier's share.

    .venv/bin/python bench/monitor_cost.py [--events 100000] [--batches 100,500] [--repeats 3]

To compare with another revision, run it from a checkout of that revision
(e.g. ``git archive main | tar -x -C /tmp/main`` then
``PYTHONPATH=/tmp/main .venv/bin/python /tmp/main/bench/monitor_cost.py``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import Prediction

FEATURES = [f"f{j:02d}" for j in range(20)]


def events(n: int, seed: int, start: int = 0) -> list[Prediction]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES))).tolist()
    mix = rng.choice(["DE", "FR", "US"], n, p=[0.5, 0.3, 0.2]).tolist()
    scores = rng.random(n).tolist()
    out = []
    for i in range(n):
        feats: dict[str, float | str | None] = dict(zip(FEATURES, x[i], strict=True))
        feats["country"] = mix[i]
        t = start + i
        out.append(Prediction(float(t), "m", "1", f"p{t}", feats, scores[i], 20.0 + (i % 7)))
    return out


def cost(n: int, batch: int, repeats: int, classifier: bool) -> float:
    config = MonitorConfig(classifier_every=20_000 if classifier else 0)
    warm = config.warmup + config.reference_size
    prefix = events(warm, seed=1)
    timed = events(n, seed=2, start=warm)
    best = float("inf")
    for _ in range(repeats):
        monitor = ModelMonitor("m", "1", config)
        monitor.observe(prefix)
        t = time.perf_counter()
        for s in range(0, n, batch):
            monitor.observe(timed[s : s + batch])
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="timed events per pass")
    parser.add_argument("--batches", default="100,500", help="micro-batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best is kept)")
    args = parser.parse_args()
    for batch in (int(b) for b in args.batches.split(",")):
        full = cost(args.events, batch, args.repeats, classifier=True)
        bare = cost(args.events, batch, args.repeats, classifier=False)
        print(
            f"batch {batch:5d}: {full:6.2f} us/event all detectors on "
            f"({bare:6.2f} without the domain classifier)"
        )


if __name__ == "__main__":
    main()

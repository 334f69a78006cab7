"""Serialised state per metric series: every metric detector after it has learnt.

Feeds each detector class 5,000 points of a noisy series (enough to fill every
window) and prints its checkpoint size as DetectorStore writes it (pickled,
then zlib level 1) and pickled alone. The target is at most 10 KB per series.

    .venv/bin/python bench/state_size.py
"""

from __future__ import annotations

import pickle
import zlib

import numpy as np

from agents.settings import DetectionSettings


def main() -> None:
    rng = np.random.default_rng(1)
    values = np.abs(rng.normal(50, 5, 5000)).round(2).tolist()
    times = [1795255200.0 + 15 * i for i in range(len(values))]
    print(f"{'detector':<18} {'checkpoint':>11} {'pickled':>9}")
    for route in DetectionSettings().routes():
        detector = route.build()
        for start in range(0, len(values), 50):
            detector.update(values[start : start + 50], times[start : start + 50])
        raw = pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)
        stored = zlib.compress(raw, 1)
        flag = "" if len(stored) <= 10_000 else "  over 10 KB"
        print(f"{type(detector).__name__:<18} {len(stored):>9,} B {len(raw):>7,} B{flag}")


if __name__ == "__main__":
    main()

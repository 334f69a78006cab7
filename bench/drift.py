"""Prediction-log detectors on synthetic streams with known change points.

Scenarios (20 numeric features + 1 categorical, one model version; the change
starts at event CHANGE): abrupt mean shift of 0.5 sigma on one feature, gradual
shift (0 -> 1 sigma over 2,000 events), variance x2, categorical mix change,
concept drift via labels (error rate 10% -> 30%), and the no-drift control
(--events, default 1,000,000 events x 20 features, all detectors on, domain
classifier included). Prints, per scenario and detector, the detection delay in
events (median over seeds, from the change start), misses and false alarms, and
the cost per event of the whole monitor on the control.

    .venv/bin/python bench/drift.py [--events N] [--seeds K]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections import defaultdict

import numpy as np

from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import Prediction

FEATURES = [f"f{j:02d}" for j in range(20)]
CHANGE = 10_000
LENGTH = 14_000
BATCH = 500
CONFIG = MonitorConfig()


def events(x, country, scores, start=0):
    out = []
    for i in range(x.shape[0]):
        feats = dict(zip(FEATURES, x[i].tolist(), strict=True))
        feats["country"] = country[i]
        out.append(
            Prediction(
                float(start + i), "m", "1", f"p{start + i}", feats, scores[i], 20.0 + (i % 7)
            )
        )
    return out


def scenario(name, seed, n=LENGTH):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    mix = rng.choice(["DE", "FR", "US"], n, p=[0.5, 0.3, 0.2])
    after = np.arange(n) >= CHANGE
    if name == "abrupt 0.5 sigma":
        x[after, 3] += 0.5
    elif name == "gradual 0 -> 1 sigma / 2000":
        x[:, 3] += np.clip((np.arange(n) - CHANGE) / 2000, 0, 1)
    elif name == "variance x2":
        x[after, 3] *= 2
    elif name == "categorical mix":
        mix[after] = rng.choice(["DE", "FR", "US"], int(after.sum()), p=[0.3, 0.3, 0.4])
    scores = rng.random(n)
    return x, mix.tolist(), scores.tolist()


def label_errors(seed, n=LENGTH):
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(n) >= CHANGE, 0.3, 0.1)
    return (rng.random(n) < rate).astype(float)


def detector_of(message: str) -> str:
    match = re.match(r"([^\d]+?) [\d.]", message)
    return (match.group(1) if match else message.split(":")[0]).strip()


def run(monitor, evs):
    found = []
    for s in range(0, len(evs), BATCH):
        found += monitor.observe(evs[s : s + BATCH])
    return found


def drift_scenarios(seeds):
    rows = []
    names = ["abrupt 0.5 sigma", "gradual 0 -> 1 sigma / 2000", "variance x2", "categorical mix"]
    for name in names:
        delays, false = defaultdict(list), defaultdict(int)
        for seed in range(seeds):
            x, mix, scores = scenario(name, seed)
            monitor = ModelMonitor("m", "1", CONFIG)
            for d in run(monitor, events(x, mix, scores)):
                key = f"{d.kind}/{detector_of(d.message)}"
                if d.timestamp < CHANGE:
                    false[key] += 1
                else:
                    delays[key].append(d.timestamp - CHANGE)
        rows += summarise(name, delays, false, seeds)
    delays, false = defaultdict(list), defaultdict(int)
    for seed in range(seeds):
        monitor = ModelMonitor("m", "1", CONFIG)
        x, mix, scores = scenario("none", seed)
        run(monitor, events(x, mix, scores))
        errors = label_errors(seed)
        for d in monitor.observe_outcomes(errors.tolist(), np.arange(LENGTH, dtype=float).tolist()):
            # outcomes start after the reference, so the change is at CHANGE in label time
            key = f"{d.kind}/error rate"
            if d.timestamp < CHANGE:
                false[key] += 1
            else:
                delays[key].append(d.timestamp - CHANGE)
    rows += summarise("concept drift (labels) 10% -> 30%", delays, false, seeds)
    return rows


def summarise(name, delays, false, seeds):
    rows = []
    for key in sorted(set(delays) | set(false)):
        got = delays.get(key, [])
        median = f"{statistics.median(got):.0f}" if got else "-"
        rows.append(
            (name, key, median, f"{seeds - min(len(got), seeds)}/{seeds}", false.get(key, 0))
        )
    if not rows:
        rows.append((name, "(nothing detected)", "-", f"{seeds}/{seeds}", 0))
    return rows


def control(total):
    monitor = ModelMonitor("m", "1", CONFIG)
    rng = np.random.default_rng(99)
    found, elapsed, done = [], 0.0, 0
    chunk = 50_000
    while done < total:
        n = min(chunk, total - done)
        x = rng.normal(size=(n, len(FEATURES)))
        mix = rng.choice(["DE", "FR", "US"], n, p=[0.5, 0.3, 0.2]).tolist()
        evs = events(x, mix, rng.random(n).tolist(), start=done)
        t = time.perf_counter()
        found += run(monitor, evs)
        elapsed += time.perf_counter() - t
        done += n
    return found, elapsed / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="control length")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per drift scenario")
    args = parser.parse_args()
    print(f"{'scenario':36} {'detector':52} {'median delay':>12} {'missed':>7} {'false':>6}")
    for name, key, median, missed, false in drift_scenarios(args.seeds):
        print(f"{name:36} {key:52} {median:>12} {missed:>7} {false:>6}")
    found, cost = control(args.events)
    print(
        f"\nno-drift control: {args.events:,} events x {len(FEATURES)} numeric + 1 categorical "
        f"features: {len(found)} false detection(s); {cost:.1f} us per event, all detectors on"
    )
    for d in found[:10]:
        print("  false:", d)


if __name__ == "__main__":
    main()

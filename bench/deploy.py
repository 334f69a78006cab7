"""Version comparison on synthetic deploys: how soon a worse version is caught, and that an equal one is not.

A binary classifier (logistic regression, scikit-learn) on 20 numeric + 2
categorical features; the true model's error rate at threshold 0.5 is about 1%
and its positive rate about 19%. Version 1 serves BEFORE predictions, then the
change: a new version serves (a deploy) or half the traffic (a 50/50 canary).
Labels arrive 200 events after their prediction. Cases:

* worse version: version 1 at serving time with a broken feature pipeline (the
  strongest feature offset by 0.2 sd: a unit mismatch) and a softer temperature:
  error rate about 1% -> 3.4%, mean score +0.036; with labels, without labels,
  and on a 50/50 canary;
* equally good retrain: a bootstrap refit of version 1 (scores differ a little);
* stationary control: one version, 1,000,000 events, nothing changes.

Every case runs the whole PredictionLogMonitor (all detectors, domain classifier
on) in micro-batches of 500. Prints per case: the delay (predictions served
after the change until the first version_regression, median and worst over the
seeds: 10 for the worse cases, 20 for the retrain; --seeds caps them), misses,
false detections per million events (any detection that is not
the expected regression) and the monitor's cost per event.

    nice -n 10 .venv/bin/python bench/deploy.py [--seeds 20] [--control 1000000]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import (
    MODEL_VERSION_ACCEPTED,
    MODEL_VERSION_CHANGE,
    VERSION_REGRESSION,
    Finding,
    Label,
    Prediction,
)

NUMERIC = [f"f{j:02d}" for j in range(20)]
COUNTRIES = np.array(["DE", "FR", "US"])
CHANNELS = np.array(["web", "app"])
BEFORE = 10_000
LABEL_DELAY = 200
BATCH = 500
TRAIN = 20_000
CONFIG = MonitorConfig()
NOT_DETECTIONS = {MODEL_VERSION_CHANGE, MODEL_VERSION_ACCEPTED}


class World:
    """The true process: P(fraud) is a steep logistic function of the features."""

    def __init__(self) -> None:
        w = np.random.default_rng(0).normal(size=len(NUMERIC))
        self.weights = 40.0 * w / np.linalg.norm(w)

    def draw(
        self, n: int, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Features (numeric + one-hot categorical columns), labels, category codes."""
        x = rng.normal(size=(n, len(NUMERIC)))
        country = rng.integers(0, 3, n)
        channel = rng.integers(0, 2, n)
        z = -34.0 + x @ self.weights + 2.0 * (country == 2) - 1.0 * channel
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
        design = np.column_stack([x, country == 1, country == 2, channel])
        return design, y, np.column_stack([country, channel])


@dataclass(frozen=True)
class Model:
    """A fitted version, with what its serving pipeline does to the inputs."""

    fitted: LogisticRegression
    offset: float = 0.0  # added to the strongest feature at serving (a unit mismatch)
    temperature: float = 1.0

    def scores(self, design: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.offset:
            design = design.copy()
            k = int(np.argmax(np.abs(self.fitted.coef_[0][: len(NUMERIC)])))
            design[:, k] += self.offset * np.sign(self.fitted.coef_[0][k])
        z = self.fitted.decision_function(design) / self.temperature
        return 1.0 / (1.0 + np.exp(-z))


@functools.cache
def models(world: World, seed: int) -> dict[str, Model]:
    """Version 1, its bootstrap refit, and version 1 served through a broken pipeline."""
    rng = np.random.default_rng(1000 + seed)
    design, y, _ = world.draw(TRAIN, rng)
    v1 = LogisticRegression(C=1000.0, max_iter=5000).fit(design, y)
    rows = rng.integers(0, TRAIN, TRAIN)
    refit = LogisticRegression(C=1000.0, max_iter=5000).fit(design[rows], y[rows])
    return {
        "1": Model(v1),
        "retrain": Model(refit),
        "worse": Model(v1, offset=0.2, temperature=2.0),
        "mismatch": Model(v1, offset=0.2),  # as confident as v1: its scores do not tell
    }


def stream(
    world: World,
    seed: int,
    before: int,
    after: int,
    old: Model,
    new: Model | None,
    canary: bool,
    labels: bool,
) -> Iterator[Prediction | Label]:
    """Predictions (and labels LABEL_DELAY events late), version "2" from event ``before``."""
    rng = np.random.default_rng(seed)
    n = before + after
    design, y, cats = world.draw(n, rng)
    served_new = np.zeros(n, dtype=bool)
    if new is not None:
        served_new[before:] = rng.random(after) < 0.5 if canary else True
    scores = old.scores(design)
    if new is not None:
        scores[served_new] = new.scores(design[served_new])
    latency = rng.gamma(9.0, 2.0, n)
    values = design[:, : len(NUMERIC)].tolist()
    countries, channels = COUNTRIES[cats[:, 0]].tolist(), CHANNELS[cats[:, 1]].tolist()
    for i in range(n):
        features: dict[str, float | str | None] = dict(zip(NUMERIC, values[i], strict=True))
        features["country"], features["channel"] = countries[i], channels[i]
        yield Prediction(
            float(i),
            "fraud",
            "2" if served_new[i] else "1",
            f"p{i}",
            features,
            float(scores[i]),
            float(latency[i]),
        )
        if labels and i >= LABEL_DELAY:
            yield Label(float(i) + 0.5, "fraud", f"p{i - LABEL_DELAY}", int(y[i - LABEL_DELAY]))


@dataclass
class Outcome:
    """What one run found."""

    delay: float | None  # predictions after the change until the first regression
    named: str | None  # the version the regression named
    false: int  # detections other than the expected regression
    events: int
    seconds: float


def run(events: Iterator[Prediction | Label], change: int, expect: bool) -> Outcome:
    """Feed the events as the worker would: per BATCH events, the predictions, then the labels.

    (Predictions and labels come from two topics, so each micro-batch holds one kind.)
    """
    monitor = PredictionLogMonitor(CONFIG)
    found: list[Finding] = []
    count, elapsed = 0, 0.0
    pending: list[Prediction | Label] = []
    for event in [*events, None]:
        if event is not None:
            pending.append(event)
            if len(pending) < BATCH:
                continue
        for kind in (Prediction, Label):
            batch = [e for e in pending if isinstance(e, kind)]
            started = time.perf_counter()
            found += monitor.process(batch)
            elapsed += time.perf_counter() - started
            count += len(batch)
        pending = []
    raised = [f for f in found if not f.cleared and f.kind not in NOT_DETECTIONS]
    regressions = [f for f in raised if f.kind == VERSION_REGRESSION and f.timestamp >= change]
    first = regressions[0] if expect and regressions else None
    false = len(raised) - (1 if first is not None else 0)
    delay = int(first.timestamp) - change + 1 if first is not None else None
    return Outcome(delay, first.model_version if first else None, false, count, elapsed)


class Case(NamedTuple):
    """One row of the table."""

    name: str
    after: int  # predictions after the change
    new: str  # which model goes live as version 2
    canary: bool  # 50/50 with version 1, else all traffic
    labels: bool
    expect: bool  # a regression should be found
    seeds: int = 10  # at most --seeds


CASES = [  # in order of importance: the first rows come first on a busy machine
    Case("worse v2, labels (target 2,000)", 6_000, "worse", False, True, True),
    Case("worse v2, no labels (target 3,000)", 6_000, "worse", False, False, True),
    Case("worse v2, 50/50 canary, labels (target 4,000)", 8_000, "worse", True, True, True),
    Case(
        "equally good retrain, 20,000 after (target 0)", 20_000, "retrain", False, True, False, 20
    ),
    Case("worse v2, 50/50 canary, no labels", 8_000, "worse", True, False, True),
    Case("unit mismatch only (confident scores), labels", 6_000, "mismatch", False, True, True, 5),
    Case("unit mismatch only, no labels", 6_000, "mismatch", False, False, True, 5),
    Case("equally good retrain, 50/50 canary", 20_000, "retrain", True, True, False, 5),
]


def case(spec: Case, world: World, seeds: int) -> tuple[str, str, str, str, str, str]:
    outcomes, named = [], []
    for seed in range(min(seeds, spec.seeds)):
        versions = models(world, seed)
        events = stream(
            world,
            seed,
            BEFORE,
            spec.after,
            versions["1"],
            versions[spec.new],
            spec.canary,
            spec.labels,
        )
        outcome = run(events, BEFORE, spec.expect)
        outcomes.append(outcome)
        if outcome.named is not None:
            named.append(outcome.named)
    return _row(spec.name, outcomes, named, spec.expect)


def control(world: World, events: int) -> tuple[str, str, str, str, str, str]:
    versions = models(world, 0)
    outcome = run(
        stream(world, 99, events, 0, versions["1"], None, False, True), events, expect=False
    )
    return _row(f"stationary control, 1 version, {events:,} events", [outcome], [], False)


def _row(
    name: str, outcomes: list[Outcome], named: list[str], expect: bool
) -> tuple[str, str, str, str, str, str]:
    delays = [o.delay for o in outcomes if o.delay is not None]
    events = sum(o.events for o in outcomes)
    false = sum(o.false for o in outcomes)
    cost = sum(o.seconds for o in outcomes) / events * 1e6
    if expect:
        delay = f"{statistics.median(delays):,.0f} / {max(delays):,.0f}" if delays else "-"
        missed = f"{len(outcomes) - len(delays)}/{len(outcomes)}"
        names = ",".join(sorted(set(named))) or "-"
    else:
        delay, missed, names = "-", "-", "-"
    per_million = f"{false / events * 1e6:.1f} ({false})"
    return (name, delay, missed, names, per_million, f"{cost:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per case")
    parser.add_argument("--control", type=int, default=1_000_000, help="control length (0: none)")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    world = World()
    header = ("case", "delay median / worst", "missed", "named", "false / 1M (n)", "us/event")
    widths = (52, 21, 7, 6, 15, 8)
    print("  ".join(v.ljust(w) for v, w in zip(header, widths, strict=True)), flush=True)
    for spec in [c for c in CASES if args.only in c.name]:
        row = case(spec, world, args.seeds)
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), flush=True)
    if args.control:
        row = control(world, args.control)
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), flush=True)


if __name__ == "__main__":
    main()

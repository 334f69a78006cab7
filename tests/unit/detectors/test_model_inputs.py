"""A model's inputs are watched per model: a deploy keeps their reference (issue 12, item 2)."""

import numpy as np

from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import Finding, Prediction

CONFIG = MonitorConfig(warmup=100, reference_size=1000, classifier_every=1000)


def log(
    start: int, n: int, version: str, shift: float = 0.0, extra: float | None = None, seed: int = 0
) -> list[Prediction]:
    rng = np.random.default_rng(seed + start)
    events = []
    for i in range(start, start + n):
        features: dict[str, float | str | None] = {
            "amount": float(rng.normal(100 + shift, 10)),
            "age": float(rng.normal(40, 5)),
            "country": str(rng.choice(["DE", "FR"])),
        }
        if extra is not None:
            features["tenure"] = float(rng.normal(extra, 1.0))
        events.append(
            Prediction(float(i), "fraud", version, f"p{i}", features, float(rng.random()), 20.0)
        )
    return events


def run(monitor: PredictionLogMonitor, events: list[Prediction]) -> list[Finding]:
    found: list[Finding] = []
    for s in range(0, len(events), 250):
        found += monitor.process(events[s : s + 250])
    return found


def test_a_drift_that_began_before_a_deploy_stays_visible_after_it():
    monitor = PredictionLogMonitor(CONFIG)
    found = run(monitor, log(0, 3000, "7") + log(3000, 20, "7", shift=20.0))
    assert found == []  # 20 events of a shift: too few yet
    found = run(monitor, log(3020, 1000, "8", shift=20.0))
    drift = [f for f in found if f.kind == "covariate_drift" and not f.cleared]
    assert drift and {f.feature for f in drift} == {"amount"}
    # Found by the input detectors v8 took over, long before its own reference is complete.
    assert drift[0].model_version == "8" and drift[0].timestamp < 3020 + 500
    new = monitor.monitor("fraud", "8")
    assert new is not None and new.phase == "reference"  # its own output still learning


def test_a_feature_the_new_version_adds_gets_a_fresh_reference_not_an_alarm():
    monitor = PredictionLogMonitor(CONFIG)
    run(monitor, log(0, 3000, "7"))
    found = run(monitor, log(3000, 3000, "8", extra=5.0))
    assert [f.kind for f in found] == ["model_version_change"]  # no "new field 'tenure'"
    later = run(monitor, log(6000, 1000, "8", extra=9.0))
    assert {f.feature for f in later if f.kind == "covariate_drift"} == {"tenure"}


def test_both_versions_of_a_canary_feed_the_same_input_detectors():
    monitor = PredictionLogMonitor(CONFIG)
    run(monitor, log(0, 3000, "7"))
    old, new = log(3000, 4000, "7"), log(3000, 4000, "8")
    mixed = [old[i] if i % 2 else new[i] for i in range(4000)]
    found = run(monitor, mixed)
    assert [f.kind for f in found] == ["model_version_change"]
    seven, eight = monitor.monitor("fraud", "7"), monitor.monitor("fraud", "8")
    assert seven is not None and eight is not None
    shared = [c for c in eight._columns if c.name == "amount"]
    assert shared and shared[0] in seven._columns

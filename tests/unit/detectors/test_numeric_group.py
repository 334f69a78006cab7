"""feed_group must leave every detector exactly as feeding it on its own would."""

import pickle

import numpy as np

from detectors.drift.ks import KSDrift
from detectors.drift.mean_shift import MeanShift
from detectors.drift.out_of_range import OutOfRange
from detectors.drift.psi import PSIDrift
from detectors.drift.rate_increase import RateIncrease
from detectors.drift.wasserstein import WassersteinDrift
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.numeric_group import NumericDetectors, feed_group
from detectors.monitor.records import Prediction

COMMON = {"window": 200, "step": 50, "false_alarm_rate": 1e-6}


def members(reference: np.ndarray) -> NumericDetectors:
    drift = [
        KSDrift(**COMMON).fit(reference),
        PSIDrift(**COMMON).fit(reference),
        WassersteinDrift(**COMMON).fit(reference),
        MeanShift(step=50, false_alarm_rate=1e-6).fit(reference),
        OutOfRange(**COMMON).fit(reference),
    ]
    quiet = np.zeros(reference.size)
    group = NumericDetectors.of(
        drift, RateIncrease(**COMMON).fit(quiet), RateIncrease(**COMMON).fit(quiet)
    )
    assert group is not None
    return group


def state(group: NumericDetectors) -> list[tuple[object, ...]]:
    return [
        (d.statistic, d.alarm, d.seen, d._since_check, tuple(d.changes), pickle.dumps(d))
        for d in group
    ]


def streams(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(4, n))
    x[0, n // 2 :] += 1.5  # drifts: rises and clears on several tests
    x[1] = np.round(x[1] * 2) / 2  # ties in every window
    x[2] = rng.integers(0, 3, n)  # discrete: fewer PSI bins than the others
    x[3, n // 3 :] *= 3  # wider: out of range
    return x


def test_feeding_together_equals_feeding_each_detector_alone():
    rng = np.random.default_rng(3)
    reference = streams(rng, 600)
    reference[0] = rng.normal(size=600)
    together = [members(r) for r in reference]
    alone = [members(r) for r in reference]
    x = streams(rng, 3000)
    start, raised = 0, 0
    for size in [1, 7, 50, 120, 333, 499, 64] * 5:
        chunk = x[:, start : start + size]
        if chunk.shape[1] == 0:
            break
        feed_group(together, chunk)
        for row, group in zip(chunk, alone, strict=True):
            for d in group:
                d._feed(np.zeros(row.size) if isinstance(d, RateIncrease) else row, None)
        for a, b in zip(together, alone, strict=True):
            assert state(a) == state(b)
        raised += sum(len(d.changes) for g in alone for d in g)
        start += size
    assert raised > 0  # the comparison covered rises and clears, not only quiet checks
    assert [g.phase() for g in together] == [together[0].phase()] * len(together)


def test_a_feature_with_a_missing_value_leaves_the_group_and_is_still_monitored():
    names = [f"f{j}" for j in range(3)]
    rng = np.random.default_rng(1)

    def event(i: int, missing: bool) -> Prediction:
        features: dict[str, float | None] = dict(
            zip(names, rng.normal(size=3).tolist(), strict=True)
        )
        if missing:
            features["f1"] = None
        return Prediction(float(i), "m", "1", f"p{i}", features, 0.5)

    monitor = ModelMonitor("m", "1", MonitorConfig(warmup=0, reference_size=500))
    monitor.observe([event(i, False) for i in range(700)])
    found = monitor.observe([event(i, i % 2 == 1) for i in range(700, 1400)])
    assert {(d.feature, d.kind) for d in found} == {("f1", "data_quality")}
    columns = {c.name: c for c in monitor._columns}
    phases = {
        name: NumericDetectors.of(c.drift, c.missing, c.wrong_type).phase()  # type: ignore[union-attr]
        for name, c in columns.items()
        if name in names
    }
    assert phases["f0"] == phases["f2"] and phases["f1"] is None  # f1's rates moved on alone

"""DriftDetector.update_many must leave every detector exactly as feeding it on its own would."""

import pickle

import numpy as np
import pytest

import detectors
from detectors import DriftDetector
from detectors.drift.categorical import CategoricalDriftDetector, CategoricalDriftParams
from detectors.drift.chi_square import ChiSquareDrift
from detectors.drift.jensen_shannon import JensenShannonDrift
from detectors.drift.ks import KSDrift, KSDriftParams
from detectors.drift.mean_shift import MeanShift, MeanShiftParams
from detectors.drift.out_of_range import OutOfRange
from detectors.drift.psi import PSIDrift, PSIDriftParams
from detectors.drift.rate_increase import RateIncrease
from detectors.drift.unseen_categories import UnseenCategories, UnseenCategoriesParams
from detectors.drift.wasserstein import WassersteinDrift, WassersteinDriftParams
from detectors.drift.window import WindowDriftParams
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import Prediction
from fireline.errors import DetectorError

COMMON = {"window": 200, "step": 50, "false_alarm_rate": 1e-6}
# One parameter instance per detector kind for every feature, as the monitor builds them.
KS, PSI = KSDriftParams(**COMMON), PSIDriftParams(**COMMON)
WASSERSTEIN = WassersteinDriftParams(**COMMON)
MEAN_SHIFT = MeanShiftParams(step=50, false_alarm_rate=1e-6)
WINDOW = WindowDriftParams(**COMMON)


def members(reference: np.ndarray) -> list[DriftDetector]:
    """One numeric feature's detectors, in the monitor's order (the two rates last)."""
    quiet = np.zeros(reference.size)
    return [
        KSDrift(KS).fit(reference),
        PSIDrift(PSI).fit(reference),
        WassersteinDrift(WASSERSTEIN).fit(reference),
        MeanShift(MEAN_SHIFT).fit(reference),
        OutOfRange(WINDOW).fit(reference),
        RateIncrease(WINDOW).fit(quiet),
        RateIncrease(WINDOW).fit(quiet),
    ]


def state(group: list[DriftDetector]) -> list[tuple[object, ...]]:
    return [
        (d.statistic, d.alarm, d.seen, d.phase, tuple(d.changes), pickle.dumps(d)) for d in group
    ]


def streams(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(4, n))
    x[0, n // 2 :] += 1.5  # drifts: rises and clears on several tests
    x[1] = np.round(x[1] * 2) / 2  # ties in every window
    x[2] = rng.integers(0, 3, n)  # discrete: fewer PSI bins than the others
    x[3, n // 3 :] *= 3  # wider: out of range
    return x


@pytest.mark.parametrize("same_windows", [False, True])
def test_feeding_together_equals_feeding_each_detector_alone(same_windows):
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
        fed = DriftDetector.update_many([g[:5] for g in together], chunk, same_windows=same_windows)
        fed += DriftDetector.update_many([g[5:] for g in together], np.zeros(chunk.shape))
        assert fed == 2 * len(together)  # every row went the shared way
        for row, group in zip(chunk, alone, strict=True):
            for d in group:
                d.update_valid(np.zeros(row.size) if isinstance(d, RateIncrease) else row)
        for a, b in zip(together, alone, strict=True):
            assert state(a) == state(b)
        raised += sum(len(d.changes) for g in alone for d in g)
        start += size
    assert raised > 0  # the comparison covered rises and clears, not only quiet checks
    assert len({tuple(d.phase for d in g) for g in together}) == 1


def test_rows_out_of_step_or_unfitted_are_fed_alone_with_the_same_outcome():
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(3, 600))
    together = [members(r)[:5] for r in reference]
    alone = [members(r)[:5] for r in reference]
    for group in (together, alone):
        group[1][0].update_valid(rng.normal(size=7))  # KS of row 1 moves ahead of its row
        group[2][3] = MeanShift(MEAN_SHIFT)  # row 2 still capturing its reference
    x = rng.normal(size=(3, 300))
    assert DriftDetector.update_many(together, x) == 0  # no two rows in step
    for row, group in zip(x, alone, strict=True):
        for d in group:
            d.update_valid(row)
    for a, b in zip(together, alone, strict=True):
        assert state(a) == state(b)


def test_windows_that_differ_within_a_row_are_sorted_apart():
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(2, 600))
    together = [members(r)[:3] for r in reference]  # KS, PSI, Wasserstein
    alone = [members(r)[:3] for r in reference]
    before = rng.normal(size=(2, 3, 200))
    before[:, 1] += 3  # PSI's window is not KS's nor Wasserstein's any more
    for group in (together, alone):
        for row, values in zip(group, before, strict=True):
            for d, own in zip(row, values, strict=True):
                d.update_valid(own)
    x = rng.normal(size=(2, 400))
    assert DriftDetector.update_many(together, x) == 2
    for row, group in zip(x, alone, strict=True):
        for d in group:
            d.update_valid(row)
    for a, b in zip(together, alone, strict=True):
        assert state(a) == state(b)


def test_update_many_needs_a_row_of_values_per_row_of_detectors():
    with pytest.raises(
        DetectorError, match=r"one row of values per row of detectors \(2\); got shape \(3, 5\)"
    ):
        DriftDetector.update_many([[KSDrift()], [KSDrift()]], np.zeros((3, 5)))


DRIFT = [cls for cls in detectors.REGISTRY.values() if issubclass(cls, DriftDetector)]


def reference_and_change(kind: str, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """Three rows' references (300 values) and 1,000 changed values each."""
    if kind == "numeric":
        return [rng.normal(size=300) for _ in range(3)], rng.normal(2, 2, (3, 1000))
    if kind == "binary":
        reference = [(rng.random(300) < 0.1).astype(float) for _ in range(3)]
        return reference, (rng.random((3, 1000)) < 0.4).astype(float)
    before, after = ["a", "b", "c", "d"], ["a", "b", "c", "d", "new"]
    reference = [rng.choice(before, 300, p=[0.4, 0.3, 0.2, 0.1]).astype(object) for _ in range(3)]
    changed = rng.choice(after, (3, 1000), p=[0.1, 0.1, 0.2, 0.2, 0.4]).astype(object)
    return reference, changed


@pytest.mark.parametrize("cls", DRIFT, ids=lambda c: c.__name__)
def test_every_drift_detector_fed_together_equals_fed_alone(cls):
    rng = np.random.default_rng(5)
    values = {"step": 25, "false_alarm_rate": 1e-4, "reference_size": 300}
    if "window" in cls.Params.model_fields:
        values["window"] = 100
    params = cls.Params(**values)
    reference, x = reference_and_change(cls.input_kind, rng)
    together = [[cls(params).fit(r)] for r in reference]
    alone = [[cls(params).fit(r)] for r in reference]
    raised = 0
    for start in range(0, 1000, 90):
        chunk = x[:, start : start + 90]
        assert DriftDetector.update_many(together, chunk) == 3
        for row, (d,) in zip(chunk, alone, strict=True):
            d.update_valid(row)
        for a, b in zip(together, alone, strict=True):
            assert state(a) == state(b)
        raised += sum(len(d.changes) for (d,) in alone)
    assert raised > 0  # the change raised the alarm: the checks compared real statistics


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
        name: tuple(d.phase for d in (*c.drift, c.missing, c.wrong_type))
        for name, c in columns.items()
        if name in names
    }
    assert phases["f0"] == phases["f2"]
    assert len({p.since_check for p in phases["f1"]}) > 1  # f1's rates moved on alone


def test_categorical_features_of_different_widths_fed_together_equal_fed_alone():
    """A monitor's categorical columns: tables of several widths, counted and tested together."""
    rng = np.random.default_rng(8)
    params = CategoricalDriftParams(window=200, step=50, false_alarm_rate=1e-6)
    unseen = UnseenCategoriesParams(window=200, step=50, false_alarm_rate=1e-6)
    alphabets = [list("ab"), list("abcd"), list("abcdefgh"), list("abcd")]
    references = [rng.choice(a, 600).astype(object) for a in alphabets]

    def rows() -> list[list[DriftDetector]]:
        return [
            [
                ChiSquareDrift(params).fit(r),
                JensenShannonDrift(params).fit(r),
                UnseenCategories(unseen).fit(r),
            ]
            for r in references
        ]

    together, alone = rows(), rows()
    assert len({d[0]._ref_counts.size for d in together}) == 3  # three table widths
    x = np.array([rng.choice(a, 2000) for a in alphabets], dtype=object)
    x[0, 1000:] = rng.choice(["a", "b", "new"], 1000, p=[0.1, 0.3, 0.6])  # mix and unseen
    x[2, 500:1500] = "c"  # one category takes over, then leaves
    start, raised = 0, 0
    for size in [1, 7, 50, 120, 333, 499, 64] * 5:
        chunk = x[:, start : start + size]
        if chunk.shape[1] == 0:
            break
        assert DriftDetector.update_many(together, chunk) == len(together)
        for row, group in zip(chunk, alone, strict=True):
            for d in group:
                d.update_valid(row)
        for a, b in zip(together, alone, strict=True):
            assert state(a) == state(b)
        raised += sum(len(d.changes) for g in alone for d in g)
        start += size
    assert raised > 0


def test_a_monitor_feeds_its_text_columns_together_as_alone(monkeypatch):
    """Categorical columns of text go the lockstep way; the findings are those of one by one."""
    rng = np.random.default_rng(2)

    def event(i: int, late: bool) -> Prediction:
        features = {
            "country": str(rng.choice(["DE", "FR", "US"] if not late else ["US", "US", "BR"])),
            "device": str(rng.choice(["web", "ios", "android"])),
            "amount": float(rng.normal()),
        }
        return Prediction(float(i), "m", "1", f"p{i}", features, 0.5)

    events = [event(i, i >= 1500) for i in range(2500)]

    def findings() -> list[tuple[object, ...]]:
        monitor = ModelMonitor("m", "1", MonitorConfig(warmup=0, reference_size=500))
        found = [f for s in range(0, 2500, 250) for f in monitor.observe(events[s : s + 250])]
        return [(f.timestamp, f.feature, f.kind, f.score, f.message) for f in found]

    calls: list[int] = []
    original = DriftDetector.update_many.__func__  # type: ignore[attr-defined]

    def counted(cls, rows, block, **kwargs):
        together = original(cls, rows, block, **kwargs)
        calls.append(together if isinstance(rows[0][0], ChiSquareDrift) else 0)
        return together

    with monkeypatch.context() as patch:
        patch.setattr(DriftDetector, "update_many", classmethod(counted))
        together = findings()
    assert sum(calls) > 0  # the text columns were fed together
    with monkeypatch.context() as patch:  # every row on its own
        patch.setattr("detectors.drift.base._lockstep_key", lambda row: None)
        alone = findings()
    assert {(feature, kind) for _, feature, kind, *_ in together} >= {
        ("country", "covariate_drift")
    }
    assert together == alone


class TotalVariationDrift(ChiSquareDrift):
    """A team's own categorical test: only _compute, no form over rows of tables."""

    _table_statistics = CategoricalDriftDetector._table_statistics  # the base's: none

    def _compute(self) -> float:
        ref, recent = self._ref_counts, self.window_counts()
        return 0.5 * float(np.abs(ref / ref.sum() - recent / recent.sum()).sum())

    def _fit_table(self, ref_counts, names, counts) -> float:
        return 0.2


def test_a_categorical_test_without_a_table_form_is_checked_one_by_one_in_lockstep():
    rng = np.random.default_rng(9)
    params = CategoricalDriftParams(window=200, step=50, false_alarm_rate=1e-6)
    references = [rng.choice(list("abcd"), 600).astype(object) for _ in range(3)]
    together = [[TotalVariationDrift(params).fit(r)] for r in references]
    alone = [[TotalVariationDrift(params).fit(r)] for r in references]
    x = np.array([rng.choice(list("abcd"), 1000) for _ in references], dtype=object)
    x[1, 500:] = "a"  # one feature's mix moves
    for start in range(0, 1000, 100):
        chunk = x[:, start : start + 100]
        assert DriftDetector.update_many(together, chunk) == len(together)
        for row, group in zip(chunk, alone, strict=True):
            group[0].update_valid(row)
        assert [state(g) for g in together] == [state(g) for g in alone]
    assert [g[0].alarm for g in together] == [False, True, False]

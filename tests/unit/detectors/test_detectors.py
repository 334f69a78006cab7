"""Conformance checks run over every registered detector, plus LatencySpike specifics.

Every detector is a ``Detector`` (checked here for all of them); metric detectors
(``MetricDetector``) and reference-vs-window drift detectors (``DriftDetector``) get
the same kinds of checks, each fed a stream of its input kind; the drift family's
are in test_drift_detectors.py.
"""

import copy
import pickle
import re

import numpy as np
import pytest
from pydantic import ValidationError

import detectors
from detectors import (
    Detector,
    DriftDetector,
    ErrorRatio,
    LatencySpike,
    MetricDetector,
    MetricEnsemble,
)
from detectors.metric.contextual import ContextModel
from fireline.errors import DetectorError

ALL = [cls for cls in detectors.REGISTRY.values() if issubclass(cls, MetricDetector)]
BASES = {"Detector", "MetricDetector", "DriftDetector"}


def test_registry_names_every_exported_detector_class():
    exported = {
        name
        for name in detectors.__all__
        if isinstance(getattr(detectors, name), type) and name not in BASES
    }
    assert exported == set(detectors.REGISTRY)
    assert all(name == cls.__name__ for name, cls in detectors.REGISTRY.items())


@pytest.mark.parametrize("cls", detectors.REGISTRY.values(), ids=lambda c: c.__name__)
def test_every_detector_has_the_one_root_and_its_update(cls):
    assert issubclass(cls, Detector)
    assert issubclass(cls, MetricDetector) != issubclass(cls, DriftDetector)  # one family
    detector = cls()
    value = "a" if cls.input_kind == "categorical" else 0.0
    assert detector.update([value, value], [1.8e9, 1.8e9 + 60]) is detector
    assert (detector.seen, detector.alarm, detector.score, detector.changes) == (2, False, 0.0, [])
    with pytest.raises(DetectorError, match="expected one timestamp per value, got 1 for 2"):
        cls().update([value, value], [1.8e9])
    with pytest.raises(DetectorError, match="timestamps must be finite epoch seconds"):
        cls().update([value], [float("nan")])
    detector.reset()
    assert detector.seen == 0


def spike_stream(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(50, 3, 400), rng.normal(500, 20, 30), rng.normal(50, 3, 200)])


# Where a detector's input family differs, the same checks get the same stream in
# that family's terms: ratios live in [0, 1] (50 → 0.05, a spike to 0.5). The
# parameters each detector is checked with are its own conformance_params()
# (TailLatency judges windows: it asks for windows a 3-sample spike can move).
SCALE: dict[type, float] = {ErrorRatio: 1e-3}
CASES = [(cls, params) for cls in ALL for params in cls.conformance_params()]


def case_id(case: object) -> str:
    if isinstance(case, type):
        return case.__name__
    return ",".join(f"{k}={v}" for k, v in case.items()) if isinstance(case, dict) else ""


def stream_for(cls: type[Detector]) -> np.ndarray:
    return spike_stream() * SCALE.get(cls, 1.0)


@pytest.mark.parametrize(("cls", "params"), CASES, ids=case_id)
class TestConformance:
    def test_is_a_detector_with_repr(self, cls, params):
        detector = cls()
        assert isinstance(detector, Detector)
        assert repr(detector).startswith(f"{cls.__name__}(")

    def test_parameters_are_one_shared_frozen_model(self, cls, params):
        detector = cls(**params)
        assert type(detector.params) is cls.Params
        assert (
            repr(detector)
            == f"{cls.__name__}("
            + ", ".join(f"{name}={value!r}" for name, value in detector.params)
            + ")"
        )
        assert cls(detector.params).params is detector.params  # one instance for many series
        assert cls().params is cls().params is cls.Params.defaults()
        assert pickle.loads(pickle.dumps(detector)).params == detector.params
        assert copy.deepcopy(detector).params is detector.params
        name = next(iter(cls.Params.model_fields))
        with pytest.raises(ValidationError, match="frozen"):
            setattr(detector.params, name, getattr(detector.params, name))
        assert all(field.description for field in cls.Params.model_fields.values())

    def test_pickle_round_trip_keeps_state(self, cls, params):
        detector = cls(**params).update(stream_for(cls)[:405])
        clone = pickle.loads(pickle.dumps(detector))
        rest = stream_for(cls)[405:]
        for x in rest:
            assert detector.update(x).alarm == clone.update(x).alarm
            assert detector.score == clone.score

    def test_no_alarm_on_constant_input(self, cls, params):
        detector = cls(**params)
        for _ in range(1000):
            assert not detector.update(42.0 * SCALE.get(cls, 1.0)).alarm

    def test_nan_and_inf_are_skipped(self, cls, params):
        detector = cls(**params).update([0.1, float("nan"), float("inf"), 0.2])
        assert detector.seen == 2

    def test_batch_and_single_updates_agree_on_alarm_state(self, cls, params):
        stream = stream_for(cls)
        one, batched = cls(**params), cls(**params)
        for x in stream[:400]:
            one.update(x)
        batched.update(stream[:400])
        assert one.alarm == batched.alarm is False
        for x in stream[400:410]:
            one.update(x)
        batched.update(stream[400:410])
        assert one.alarm == batched.alarm is True

    def test_alarm_changes_do_not_depend_on_batching(self, cls, params):
        stream = stream_for(cls)
        expected = None
        for size in (1, 5, 64, len(stream)):
            detector = cls(**params)
            changes = []
            for start in range(0, len(stream), size):
                changes += [
                    (start + c.index, c.raised)
                    for c in detector.update(stream[start : start + size]).changes
                ]
            assert changes, "the spike stream must raise and clear the alarm"
            expected = expected or changes
            assert changes == expected, f"batch size {size}"

    def test_changes_index_the_callers_batch_despite_nans(self, cls, params):
        detector = cls(**params).update(stream_for(cls)[:400])
        scale = SCALE.get(cls, 1.0)
        batch = [v * scale for v in (500.0, float("nan"), 510.0, float("nan"), 505.0, 520.0)]
        (change,) = detector.update(batch).changes
        assert change.raised and batch[change.index] == 505.0 * scale

    def test_reset_forgets_everything(self, cls, params):
        detector = cls(**params).update(stream_for(cls)[:410])
        assert detector.alarm
        detector.reset()
        assert (detector.alarm, detector.score, detector.seen) == (False, 0.0, 0)
        assert repr(detector) == repr(cls(**params))
        assert pickle.dumps(detector) == pickle.dumps(cls(**params))

    def test_deepcopy_is_independent(self, cls, params):
        detector = cls(**params).update(stream_for(cls)[:300])
        clone = copy.deepcopy(detector)
        clone.update(stream_for(cls)[400:410])
        assert clone.alarm and not detector.alarm

    def test_score_is_in_unit_interval(self, cls, params):
        detector = cls(**params)
        for x in stream_for(cls):
            assert 0.0 <= detector.update(x).score <= 1.0

    def test_rejects_2d_input(self, cls, params):
        with pytest.raises(
            DetectorError, match=r"expected a value or a 1-D batch, got shape \(2, 2\)"
        ):
            cls().update(np.ones((2, 2)))

    def test_timestamps_are_optional_and_must_match_the_values(self, cls, params):
        stream = stream_for(cls)
        with_times, without = cls(**params), cls(**params)
        changes = [
            (c.index, c.raised)
            for c in with_times.update(stream, 1.8e9 + 60.0 * np.arange(stream.size)).changes
        ]
        assert changes == [(c.index, c.raised) for c in without.update(stream).changes]
        with pytest.raises(DetectorError, match="expected one timestamp per value, got 1 for 2"):
            cls(**params).update([1.0, 2.0], [0.0])


def test_latency_spike__alarm_rises_and_clears_with_hysteresis():
    detector = LatencySpike(consecutive=3)
    states = [detector.update(x).alarm for x in spike_stream()]
    rises = [i for i in range(1, len(states)) if states[i] and not states[i - 1]]
    clears = [i for i in range(1, len(states)) if not states[i] and states[i - 1]]
    assert rises == [402]
    assert clears == [432]
    assert detector.baseline == pytest.approx(50, abs=2)


def test_latency_spike__single_outliers_do_not_alarm():
    rng = np.random.default_rng(11)
    stream = rng.normal(50, 3, 2000)
    stream[::97] = 900.0  # isolated outliers, never two in a row
    detector = LatencySpike(consecutive=2)
    assert not any(detector.update(x).alarm for x in stream)


def test_latency_spike__lasting_level_shift_becomes_the_new_normal():
    rng = np.random.default_rng(2)
    detector = LatencySpike(window=40, adapt_after=100).update(rng.normal(50, 2, 200))
    shifted = rng.normal(100, 3, 400)
    changes = [(c.index, c.raised) for c in detector.update(shifted).changes]
    assert changes == [(2, True), (101, False)]  # cleared on its 100th alarmed point
    assert detector.baseline == pytest.approx(100, abs=3)
    assert not detector.update(rng.normal(100, 3, 200)).alarm


def test_latency_spike__series_near_zero_needs_min_delta():
    detector = LatencySpike().update([0.0] * 100)
    assert not detector.update([0.01, 0.02, 0.015, 0.5, 0.9]).alarm
    assert detector.update([5.0, 6.0, 5.5]).alarm


def test_latency_spike__peak_is_highest_value_of_the_alarm():
    detector = LatencySpike().update(np.full(100, 50.0) + np.arange(100) % 3)
    detector.update([300.0, 700.0, 400.0])
    assert detector.alarm
    assert detector.peak == 700.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 5}, "window must be at least 10; got 5."),
        ({"threshold": 0}, "threshold must be positive; got 0."),
        ({"min_ratio": 0.5}, "min_ratio must be at least 1; got 0.5."),
        ({"consecutive": 0}, "consecutive must be at least 1; got 0."),
        ({"warmup": 500}, "warmup must be at most window (120); got 500."),
        ({"min_spread": -1}, "min_spread must not be negative; got -1."),
        ({"min_delta": -1}, "min_delta must not be negative; got -1."),
        ({"adapt_after": 3}, "adapt_after must be larger than consecutive (3); got 3."),
    ],
)
def test_latency_spike__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^LatencySpike: {re.escape(message)}$"):
        LatencySpike(**kwargs)


@pytest.mark.parametrize("size", [2, 3, 5, 13, 64, 1000])
def test_latency_spike__level_shift_adoption_does_not_depend_on_batching(size):
    rng = np.random.default_rng(4)
    stream = [
        *rng.normal(50, 2, 200),
        *rng.normal(100, 3, 400),
        *[400.0] * 5,
        *rng.normal(100, 3, 50),
    ]

    def run(batch_size: int) -> tuple[list[tuple[int, bool, float, float]], float]:
        detector = LatencySpike(window=40, adapt_after=100)
        changes = []
        for start in range(0, len(stream), batch_size):
            for c in detector.update(stream[start : start + batch_size]).changes:
                changes.append((start + c.index, c.raised, c.observed, c.baseline))
        return changes, detector.baseline

    assert run(size) == run(1)


# --- ContextModel and MetricEnsemble (the default detector for unknown series) ---


def periodic_stream(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50 + 20 * np.sin(np.arange(n) * 2 * np.pi / 50) + rng.normal(0, 0.5, n)


def test_context_model__familiar_cycle_is_not_novel_and_a_break_is():
    model = ContextModel()
    for x in [1.0, 2.0, 3.0, 2.0] * 50:
        novelty, spatial = model.step(x)
    assert (novelty, spatial) == (0.0, False)
    novelty, spatial = model.step(1.0)  # 2, 3, 2, 1 instead of 2, 3, 2, 1... is familiar
    assert novelty == 0.0
    novelty, spatial = model.step(3.0)  # 1 -> 3 never happened
    assert novelty > 0.5
    assert not spatial  # 3 is inside the range seen


def test_context_model__spatial_anomaly_needs_the_margin_and_the_warmup():
    model = ContextModel(margin=0.1, warmup=20)
    assert model.step(0.0) == (0.0, False)
    assert not model.step(100.0)[1]  # still warming up: the range is being learned
    for x in np.linspace(0, 100, 30):
        model.step(float(x))
    assert not model.step(109.0)[1]  # within 10% of the range
    assert model.step(125.0)[1]
    assert model.step(-20.0)[1]
    assert (model.low, model.high) == (-20.0, 125.0)


def test_context_model__steady_counts_points_since_the_range_widened():
    model = ContextModel()
    for x in [1.0, 5.0, 3.0, 2.0, 4.0]:
        model.step(x)
    assert model.steady == 3  # 5.0 widened it; 3, 2 and 4 did not
    model.step(0.5)
    assert model.steady == 0


def test_context_model__memory_is_a_fixed_bit_set():
    model = ContextModel(memory_kib=1)
    rng = np.random.default_rng(1)
    for x in rng.normal(0, 1, 5000):
        model.step(float(x))
    assert model.memory_bytes == 1024
    assert 0.3 < model.fill < 1.0  # noise fills it, it never grows
    familiar = ContextModel(memory_kib=1)
    for x in [1.0, 2.0, 3.0] * 100:
        familiar.step(x)
    assert familiar.fill < 0.02  # a cycle's few sequences


def test_context_model__state_round_trip_keeps_learning_alike():
    model = ContextModel()
    stream = periodic_stream(600)
    for x in stream[:400]:
        model.step(float(x))
    state = model.__getstate__()
    assert "_plan" not in state  # derived from the parameters, not saved
    clone = ContextModel.__new__(ContextModel)
    clone.__setstate__({**state, "_memory": bytes(state["_memory"])})  # as a codec may
    assert [model.step(float(x)) for x in stream[400:]] == [
        clone.step(float(x)) for x in stream[400:]
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grids": ()}, "grids must have at least 1 item; got ()."),
        ({"grids": (1, 4)}, "grids.0 must be at least 2; got 1."),
        ({"grids": (3, 65)}, "grids.1 must be at most 64; got 65."),
        ({"order": 0}, "order must be at least 1; got 0."),
        ({"order": 9}, "order must be at most 8; got 9."),
        ({"memory_kib": 0}, "memory_kib must be at least 1; got 0."),
        ({"memory_kib": 65}, "memory_kib must be at most 64; got 65."),
        ({"margin": -0.1}, "margin must not be negative; got -0.1."),
        ({"warmup": 0}, "warmup must be at least 1; got 0."),
    ],
)
def test_context_model__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^ContextModel: {re.escape(message)}$"):
        ContextModel(**kwargs)


def test_metric_ensemble__catches_a_pattern_break_inside_the_normal_range():
    stream = periodic_stream(3000)
    stream[2500:2530] = 50.0  # flat in the middle of the range: no level ever seen is broken
    detector = MetricEnsemble()
    scores = [detector.update(float(x)).score for x in stream]
    hits = [i for i, s in enumerate(scores) if s >= detector.params.threshold]
    assert next(i for i in hits if i >= 2500) <= 2510, "the flat stretch must be detected"
    assert not [i for i in hits if 300 <= i < 2500]  # no detection in the regular part
    assert max(scores[2540:]) < 0.8  # back to the cycle: at most a marginal score


def test_metric_ensemble__rests_after_a_detection():
    stream = np.concatenate([periodic_stream(1000), [500.0], periodic_stream(100, seed=6)])
    detector = MetricEnsemble(rest=40)
    scores = [detector.update(float(x)).score for x in stream]
    assert scores[1000] == 1.0  # far beyond the range: detected at once
    assert scores[1001:1041] == [0.0] * 40


def test_metric_ensemble__white_noise_rarely_scores_high():
    rng = np.random.default_rng(8)
    detector = MetricEnsemble()
    scores = [detector.update(float(x)).score for x in rng.normal(100, 5, 6000)]
    hits = [s for s in scores[1000:] if s >= detector.params.threshold]
    assert len(hits) <= 3  # Gaussian noise does break its range now and then


def test_metric_ensemble__calibration_quiets_a_series_that_keeps_detecting():
    # Bursty counts (a Poisson rate that is itself lognormal, like mention counts):
    # the novelty's Gaussian tail calls them anomalous far more often than it should.
    def detections(strength: float) -> int:
        found = 0
        for seed in (1, 2, 3):
            rng = np.random.default_rng(seed)
            stream = np.minimum(rng.poisson(rng.lognormal(3, 0.8, 12_000)), 150)
            detector = MetricEnsemble(calibration_strength=strength)
            scores = [detector.update(float(x)).score for x in stream]
            found += sum(s >= detector.params.threshold for s in scores[2000:])
        return found

    uncalibrated, calibrated = detections(0.0), detections(0.2)
    assert calibrated <= 0.8 * uncalibrated, (calibrated, uncalibrated)


def test_metric_ensemble__calibration_leaves_a_regular_series_alone():
    stream = periodic_stream(3000)
    stream[2500:2530] = 50.0  # a pattern break
    plain, calibrated = MetricEnsemble(calibration_strength=0.0), MetricEnsemble()
    before = [plain.update(float(x)).score for x in stream]
    after = [calibrated.update(float(x)).score for x in stream]
    assert before[:2500] == after[:2500]  # too few detections to question the tail
    assert before[2500:2510] == after[2500:2510]  # the break scores as before
    assert max(after[2500:2510]) >= calibrated.params.threshold


def test_metric_ensemble__lasting_shift_is_adopted():
    rng = np.random.default_rng(2)
    detector = MetricEnsemble(adapt_after=100).update(rng.normal(50, 2, 500))
    changes = [
        (c.index, c.raised, c.adapted) for c in detector.update(rng.normal(150, 2, 300)).changes
    ]
    assert changes == [(2, True, False), (101, False, True)]
    assert not detector.update(rng.normal(150, 2, 100)).alarm


def test_metric_ensemble__state_stays_under_10_kb():
    rng = np.random.default_rng(3)
    detector = MetricEnsemble().update(rng.normal(0, 1, 50_000))
    assert detector.model.memory_bytes == detector.coarse_model.memory_bytes == 3 * 1024
    assert len(pickle.dumps(detector)) < 10_000


def test_metric_ensemble__detects_a_level_shift_inside_the_range():
    rng = np.random.default_rng(4)
    stream = rng.normal(10, 1, 3000)
    stream[100::200] = 100.0  # rare spikes: the range seen is 0..100 from early on
    stream[2050:2150] += 30  # a shift to 40, far inside it
    detector = MetricEnsemble()
    scores = [detector.update(float(x)).score for x in stream]
    hits = [i for i, s in enumerate(scores) if s >= detector.params.threshold]
    assert [i for i in hits if 2050 <= i < 2060], hits
    assert not [i for i in hits if 1000 <= i < 2050 and i % 200 != 100]  # only the spikes


def test_metric_ensemble__a_level_shift_inside_the_range_raises_the_alarm():
    rng = np.random.default_rng(4)
    stream = rng.normal(10, 1, 3000)
    stream[100::200] = 100.0  # rare spikes: the envelope is 0..100 from early on
    stream[2050:2150] += 30  # far inside it: only the moving average's jump sees it
    detector = MetricEnsemble()
    raised = []
    for i, x in enumerate(stream):
        raised += [i for change in detector.update(float(x)).changes if change.raised]
    assert [i for i in raised if i < 2050] == []
    assert [i for i in raised if 2050 <= i < 2060], raised


def test_metric_ensemble__a_new_quiet_series_does_not_alarm_on_its_own_swing():
    # A new series of plain noise (a pod's CPU): its moving average has shown little
    # of its swing yet and breaks its narrow range by chance. Such a jump scores, but
    # paged for in about one new series in ten, before the jump had to be material.
    def alarmed(detector_params: dict[str, float]) -> int:
        count = 0
        for seed in range(60):
            stream = np.round(np.random.default_rng(seed).normal(0.42, 0.03, 1000), 3)
            detector = MetricEnsemble(**detector_params)
            changes = [detector.update(stream[s : s + 10]).changes for s in range(0, 1000, 10)]
            count += any(change.raised for batch in changes for change in batch)
        return count

    assert alarmed({}) == 0
    assert alarmed({"jump_alarm_fraction": 0.0}) >= 3  # the old rule, for contrast


def test_metric_ensemble__detects_a_stuck_series_once():
    rng = np.random.default_rng(5)
    stream = np.round(rng.normal(50, 5, 1500))  # integers: short runs of equal values occur
    stream[1000:1200] = 50.0  # the exporter froze
    detector = MetricEnsemble()
    scores, alarms = [], []
    for x in stream:
        scores.append(detector.update(float(x)).score)
        alarms.append(detector.alarm)
    hits = [i for i in range(1000, 1200) if scores[i] == 1.0]
    assert len(hits) == 1 and hits[0] < 1040, hits
    assert all(alarms[hits[0] + 3 : 1200])  # alarmed while stuck
    assert not any(alarms[:1000]) and not alarms[-1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be positive; got 0."),
        ({"threshold": 1.5}, "threshold must be at most 1; got 1.5."),
        ({"rest": -1}, "rest must not be negative; got -1."),
        ({"window": 10}, "window must be at least 40; got 10."),
        ({"min_spread": 0}, "min_spread must be positive; got 0."),
        ({"warmup": 5}, "warmup must be at least 10; got 5."),
        ({"consecutive": 0}, "consecutive must be at least 1; got 0."),
        ({"adapt_after": 3}, "adapt_after must be larger than consecutive (3); got 3."),
        ({"order": 9}, "order must be at most 8; got 9."),
        ({"calibration_window": 0}, "calibration_window must be at least 1; got 0."),
        ({"calibration_allowance": 0}, "calibration_allowance must be positive; got 0."),
        ({"calibration_strength": -1}, "calibration_strength must not be negative; got -1."),
    ],
)
def test_metric_ensemble__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^MetricEnsemble: {re.escape(message)}$"):
        MetricEnsemble(**kwargs)

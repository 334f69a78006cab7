"""Conformance checks over every registered DriftDetector, fed streams of its input kind."""

import copy
import math
import pickle
import re

import numpy as np
import pytest

import detectors
from detectors import DriftDetector
from detectors.drift.window import WindowDriftDetector
from fireline.errors import DetectorError

DRIFT = [cls for cls in detectors.REGISTRY.values() if issubclass(cls, DriftDetector)]
CHANGE_AT, RETURN_AT = 3000, 4000  # the change streams: reference+normal, changed, normal


def change_stream(kind: str, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        parts = [rng.normal(0, 1, CHANGE_AT), rng.normal(3, 2, 1000), rng.normal(0, 1, 3000)]
    elif kind == "binary":
        parts = [rng.random(CHANGE_AT) < 0.05, rng.random(1000) < 0.5, rng.random(3000) < 0.05]
        parts = [p.astype(float) for p in parts]
    else:
        normal, changed = ["a", "b", "c"], ["a", "b", "c", "new"]
        parts = [
            rng.choice(normal, CHANGE_AT),
            rng.choice(changed, 1000, p=[0.1, 0.1, 0.1, 0.7]),
            rng.choice(normal, 3000),
        ]
    return np.concatenate(parts).astype(object if kind == "categorical" else float)


def stationary(kind: str, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        return rng.normal(10, 2, size)
    if kind == "binary":
        return (rng.random(size) < 0.1).astype(float)
    return rng.choice(["a", "b", "c", "d", "e"], size, p=[0.4, 0.3, 0.2, 0.09, 0.01]).astype(object)


CONSTANT = {"numeric": 42.0, "binary": 0.0, "categorical": "a"}
INVALID = {
    "numeric": [math.nan, math.inf, None],
    "binary": [math.nan, None],
    "categorical": [None, math.nan],
}


def changes_of(detector, stream, size):
    found = []
    for start in range(0, len(stream), size):
        found += [
            (start + c.index, c.raised)
            for c in detector.update(stream[start : start + size]).changes
        ]
    return found


CASES = [(cls, params) for cls in DRIFT for params in cls.conformance_params()]


def case_id(case: object) -> str:
    if isinstance(case, type):
        return case.__name__
    return ",".join(f"{k}={v}" for k, v in case.items()) if isinstance(case, dict) else ""


@pytest.mark.parametrize(("cls", "params"), CASES, ids=case_id)
class TestDriftConformance:
    def test_is_a_drift_detector_with_repr(self, cls, params):
        detector = cls(**params)
        assert isinstance(detector, DriftDetector)
        assert repr(detector).startswith(f"{cls.__name__}(")
        assert "false_alarm_rate=1e-09" in repr(detector)

    def test_parameters_are_one_shared_frozen_model(self, cls, params):
        detector = cls(**params)
        assert type(detector.params) is cls.Params
        assert cls(detector.params).params is detector.params  # one instance for many series
        assert cls().params is cls().params is cls.Params.defaults()
        assert pickle.loads(pickle.dumps(detector)).params == detector.params
        assert copy.deepcopy(detector).params is detector.params
        assert all(field.description for field in cls.Params.model_fields.values())

    def test_detects_the_change_then_clears_with_hysteresis(self, cls, params):
        found = changes_of(cls(**params), change_stream(cls.input_kind), 50)
        assert [raised for _, raised in found] == [True, False]
        (rise, _), (clear, _) = found
        assert CHANGE_AT < rise < CHANGE_AT + 600
        assert RETURN_AT < clear < RETURN_AT + 1500

    def test_no_alarm_on_a_long_stationary_stream(self, cls, params):
        detector = cls(**params)
        stream = stationary(cls.input_kind, 60_000, seed=9)
        assert changes_of(detector, stream, 500) == []
        assert detector.fitted and detector.score < 0.5

    def test_no_alarm_and_zero_score_on_constant_input(self, cls, params):
        detector = cls(**params)
        for _ in range(30):
            detector.update([CONSTANT[cls.input_kind]] * 200)
            assert not detector.alarm
        assert detector.fitted and detector.score == 0.0

    def test_pickle_round_trip_keeps_state(self, cls, params):
        stream = change_stream(cls.input_kind)
        detector = cls(**params).update(stream[: CHANGE_AT + 50])
        clone = pickle.loads(pickle.dumps(detector))
        for start in range(CHANGE_AT + 50, len(stream), 37):
            batch = stream[start : start + 37]
            assert detector.update(batch).changes == clone.update(batch).changes
            assert (detector.score, detector.alarm) == (clone.score, clone.alarm)
        assert len(pickle.dumps(detector)) < 64_000  # the reference is a sketch, not a copy

    def test_seeded_runs_repeat_and_the_seed_matters_where_there_is_one(self, cls, params):
        stream = change_stream(cls.input_kind)
        runs = [
            [(d.update(stream[i : i + 100]).score) for i in range(0, len(stream), 100)]
            for d in (cls(**params), cls(**params))
        ]
        assert runs[0] == runs[1]
        if "seed" in cls.Params.model_fields:
            fitted = [cls(**{**params, "seed": s}).update(stream[:2500]) for s in (0, 1)]
            assert fitted[0].threshold != fitted[1].threshold

    def test_invalid_values_are_skipped_and_changes_index_the_callers_batch(self, cls, params):
        stream = change_stream(cls.input_kind)
        detector = cls(**params).update(stream[:CHANGE_AT])
        seen = detector.seen
        mixed, positions = [], []
        for value in stream[CHANGE_AT : CHANGE_AT + 600]:
            mixed.extend(INVALID[cls.input_kind])
            positions.append(len(mixed))
            mixed.append(value)
        found = detector.update(mixed).changes
        assert detector.seen == seen + 600
        assert found and all(c.index in positions for c in found)

    def test_batch_size_does_not_change_the_alarms(self, cls, params):
        stream = change_stream(cls.input_kind)
        expected = changes_of(cls(**params), stream, len(stream))
        assert expected
        for size in (1, 7, 64):
            assert changes_of(cls(**params), stream, size) == expected, f"batch size {size}"

    def test_reset_forgets_everything(self, cls, params):
        stream = change_stream(cls.input_kind)
        detector = cls(**params).update(stream[: CHANGE_AT + 900])
        assert detector.alarm
        detector.reset()
        assert (detector.alarm, detector.score, detector.seen, detector.fitted) == (
            False,
            0.0,
            0,
            False,
        )
        assert repr(detector) == repr(cls(**params))
        assert changes_of(detector, stream, 50) == changes_of(cls(**params), stream, 50)

    def test_deepcopy_is_independent(self, cls, params):
        stream = change_stream(cls.input_kind)
        detector = cls(**params).update(stream[:CHANGE_AT])
        clone = copy.deepcopy(detector).update(stream[CHANGE_AT : CHANGE_AT + 900])
        assert clone.alarm and not detector.alarm

    def test_score_is_in_unit_interval(self, cls, params):
        detector = cls(**params)
        stream = change_stream(cls.input_kind)
        for start in range(0, len(stream), 100):
            assert 0.0 <= detector.update(stream[start : start + 100]).score <= 1.0

    def test_fit_takes_an_explicit_reference(self, cls, params):
        stream = change_stream(cls.input_kind)
        detector = cls(**params).fit(stream[:1000])
        assert detector.fitted and detector.seen == 0 and detector.threshold > 0
        with pytest.raises(
            DetectorError, match=r"the reference needs at least 100 valid values; got 10\."
        ):
            cls(**params).fit(stream[:10])

    def test_rejects_2d_input(self, cls, params):
        with pytest.raises(
            DetectorError, match=r"expected a value or a 1-D batch, got shape \(2, 2\)"
        ):
            cls(**params).update(np.ones((2, 2)))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"window": 5}, "window must be at least 10; got 5."),
            ({"step": 0}, "step must be at least 1; got 0."),
            ({"step": 600}, "step must be at most window (500); got 600."),
            ({"reference_size": 10}, "reference_size must be at least 20; got 10."),
            ({"false_alarm_rate": 0.5}, "false_alarm_rate must be less than 0.01; got 0.5."),
            ({"false_alarm_rate": 0}, "false_alarm_rate must be positive; got 0."),
            ({"consecutive": 0}, "consecutive must be at least 1; got 0."),
            ({"clear_ratio": 1.5}, "clear_ratio must be at most 1; got 1.5."),
            ({"clear_ratio": 0}, "clear_ratio must be positive; got 0."),
            ({"min_reference": 1}, "min_reference must be at least 2; got 1."),
            (
                {"min_reference": 300, "reference_size": 200},
                "min_reference must be at most reference_size (200); got 300.",
            ),
        ],
    )
    def test_rejects_bad_parameters(self, cls, params, kwargs, message):
        if "window" in message and not issubclass(cls, WindowDriftDetector):
            kwargs, message = {"step": -1}, "step must be at least 1; got -1."
        with pytest.raises(DetectorError, match=f"^{cls.__name__}: {re.escape(message)}$"):
            cls(**kwargs)


@pytest.mark.parametrize("window", [500, 37])
def test_wasserstein_calibration_is_the_one_draw_at_a_time_gives(window):
    # The resampled windows are sorted and measured together now: the threshold
    # must be, to the bit, what measuring each draw alone with _distance gave.
    from scipy.stats import t as student_t

    from detectors.drift.budget import per_check_alpha
    from detectors.drift.wasserstein import WassersteinDrift

    rng = np.random.default_rng(11)
    for reference in (rng.normal(size=2000), rng.integers(0, 5, 777).astype(float)):
        detector = WassersteinDrift(window=window, step=min(window, 50), seed=3).fit(reference)
        params, draws = detector.params, detector.params.draws
        resample = np.random.default_rng(params.seed)
        null = np.array(
            [detector._distance(resample.choice(reference, window)) for _ in range(draws)]
        )
        widen = math.sqrt(1.0 + window / reference.size)
        alpha = per_check_alpha(params.false_alarm_rate, params.step)
        z = float(student_t.isf(alpha, draws - 1)) * math.sqrt(1 + 1 / draws)
        expected = max(float(null.mean() + z * widen * null.std(ddof=1)), params.min_shift)
        assert detector.threshold == expected


def test_categorical_text_fast_path_matches_the_general_one():
    # All-text batches skip the per-value checks; a batch with one None takes the
    # general path: the kept values, their positions and the encodings agree.
    from detectors.drift.chi_square import ChiSquareDrift
    from detectors.drift.unseen_categories import UnseenCategories

    rng = np.random.default_rng(5)
    reference = rng.choice(["a", "b", "c"], 600).tolist()
    texts = rng.choice(["a", "b", "c", "new"], 300).tolist()
    for detector in (ChiSquareDrift(window=100, step=50), UnseenCategories(window=100, step=50)):
        detector.fit(reference)
        fast, fast_at = detector.valid(texts)
        slow, slow_at = detector.valid([*texts, None])
        assert fast.dtype == slow.dtype == object
        assert fast.tolist() == slow.tolist() and fast_at.tolist() == slow_at.tolist()
        encoded = detector._encode(fast)
        assert encoded.dtype == np.int64
        expected = [
            (v not in detector.known)
            if isinstance(detector, UnseenCategories)
            else detector._codes.get(v, len(detector._codes))
            for v in texts
        ]
        assert encoded.tolist() == [int(e) for e in expected]

"""The parameter models: one declaration drives validation, repr, pickling and the reference."""

import pickle
import re

import pytest
from pydantic import ValidationError

from detectors import LatencySpike, MeanShift, TailLatency
from detectors.metric.contextual import ContextModel
from detectors.metric.ensemble import MetricEnsemble, MetricEnsembleParams
from detectors.metric.latency_spike import LatencySpikeParams
from detectors.metric.seasonal import SeasonalBaselineParams
from detectors.metric.tail_latency import TailLatencyParams
from detectors.params import field_rules
from fireline.errors import DetectorError


def test_params__keywords_override_the_defaults_and_a_model_is_shared():
    detector = LatencySpike(window=50, warmup=10)
    assert (detector.params.window, detector.params.warmup) == (50, 10)
    assert detector.params.threshold == LatencySpikeParams().threshold
    params = LatencySpikeParams(window=50)
    assert LatencySpike(params).params is params
    assert LatencySpike(params, warmup=5).params == LatencySpikeParams(window=50, warmup=5)


def test_params__repr_lists_every_parameter_in_declaration_order():
    assert repr(TailLatency(window=100)) == (
        "TailLatency(quantile=0.99, window=100, step=50, history=30, threshold=6.0, "
        "min_ratio=1.3, min_delta=1.0, consecutive=2, warmup=10, min_spread=0.05, "
        "adapt_after=None)"
    )


def test_params__an_unknown_or_mistyped_parameter_is_named():
    with pytest.raises(DetectorError) as err:
        LatencySpike(windw=50)
    assert str(err.value) == "LatencySpike: windw: Extra inputs are not permitted; got 50."
    with pytest.raises(DetectorError) as err:
        LatencySpike(window="wide")
    assert str(err.value) == (
        "LatencySpike: window: Input should be a valid integer, unable to parse string as an "
        "integer; got 'wide'."
    )


def test_params__every_broken_field_rule_is_named_at_once():
    with pytest.raises(DetectorError) as err:
        LatencySpike(window=5, threshold=0)
    assert str(err.value) == (
        "LatencySpike: window must be at least 10; got 5. threshold must be positive; got 0."
    )


def test_params__a_model_of_another_detector_is_refused():
    with pytest.raises(DetectorError, match=r"^LatencySpike: expected LatencySpikeParams, got "):
        LatencySpike(TailLatencyParams())


def test_params__a_model_extending_the_params_is_accepted_and_shared():
    ensemble = MetricEnsembleParams(order=4)
    model = ContextModel(ensemble)  # the ensemble hands its context model its own parameters
    assert model.params is ensemble
    assert repr(model) == (
        "ContextModel(grids=(3, 5, 8), order=4, memory_kib=3, margin=0.05, warmup=100)"
    )
    assert MetricEnsemble(ensemble).model.params is ensemble


def test_params__pickles_small_and_unpickles_shared():
    params = LatencySpikeParams(window=60)
    blob = pickle.dumps(params)
    assert len(blob) < 300
    assert b"pydantic" not in blob
    first, second = pickle.loads(blob), pickle.loads(blob)
    assert first == params and first is second
    assert pickle.loads(pickle.dumps(LatencySpikeParams())) is LatencySpikeParams.defaults()


def test_params__a_checkpoint_from_before_the_params_starts_afresh():
    old = LatencySpike()
    state = {k: v for k, v in old.__dict__.items() if k != "params"}
    with pytest.raises(DetectorError, match="a checkpoint without parameters"):
        LatencySpike.__new__(LatencySpike).__setstate__(state)
    drift = MeanShift()
    state = {k: v for k, v in drift.__dict__.items() if k != "params"}
    with pytest.raises(DetectorError, match="a checkpoint without parameters"):
        MeanShift.__new__(MeanShift).__setstate__(state)


@pytest.mark.parametrize(
    ("model", "name", "rules"),
    [
        (LatencySpikeParams, "warmup", ["at least 1", "at most `window`"]),
        (LatencySpikeParams, "adapt_after", ["larger than `consecutive`"]),
        (LatencySpikeParams, "min_delta", ["not negative"]),
        (TailLatencyParams, "quantile", ["positive", "less than 1"]),
        (SeasonalBaselineParams, "season", ["'day' or 'week'"]),
        (SeasonalBaselineParams, "direction", ["'both', 'up' or 'down'"]),
        (SeasonalBaselineParams, "utc_offset_hours", ["greater than -24", "less than 24"]),
        (MetricEnsembleParams, "grids", ["at least 1 item", "each at least 2", "each at most 64"]),
        (MetricEnsembleParams, "threshold", ["positive", "at most 1"]),
    ],
)
def test_params__field_rules_read_as_the_errors_do(model, name, rules):
    assert field_rules(model, name) == rules


def test_params__rules_of_a_parent_model_apply_to_its_children():
    rules = [(r.field, r.relation, r.other) for r in TailLatencyParams.all_rules()]
    assert rules == [
        ("step", "at most", "window"),
        ("warmup", "at most", "history"),
        ("adapt_after", "larger than", "consecutive"),
    ]
    with pytest.raises(DetectorError, match=re.escape("min_reference must be at most")):
        MeanShift(min_reference=5000)


def test_params__model_copy_with_an_update_is_a_new_validated_model_and_the_shared_one_stays():
    shared = MetricEnsembleParams.defaults()
    copied = shared.model_copy(update={"jump_alarm_fraction": 0.0})
    assert (copied.jump_alarm_fraction, shared.jump_alarm_fraction) == (0.0, 0.07)
    assert MetricEnsembleParams().jump_alarm_fraction == 0.07
    assert shared.model_copy() is shared  # frozen: nothing to copy
    with pytest.raises(ValidationError, match="adapt_after must be larger than consecutive"):
        shared.model_copy(update={"adapt_after": 1})

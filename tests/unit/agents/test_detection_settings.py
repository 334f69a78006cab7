"""Every rule of every detector parameter model, broken once, with its exact message.

Detectors the worker configures are checked through the environment, as an
operator would meet the rule (``FIRELINE_DETECTION__...``); the prediction-log
detectors, which have no settings, through their constructors. A rule declared
on a shared model (``DriftParams``) is the same declaration for every detector
that extends it, so it is broken once. ``test_every_rule_is_covered`` fails when a
rule is added without a case here.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import annotated_types
import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo

import detectors
from agents.settings import DetectionSettings, load_settings
from detectors import (
    ChiSquareDrift,
    KSDrift,
    MeanShift,
    OutOfRange,
    PSIDrift,
    UnseenCategories,
    WassersteinDrift,
)
from detectors.drift.domain_classifier import DomainClassifier, DomainClassifierParams
from detectors.metric.contextual import ContextModel, ContextModelParams
from detectors.metric.latency_spike import LatencySpikeParams
from detectors.params import RULE_ERROR, DetectorParams
from fireline.errors import ConfigError, DetectorError

# The settings sections that are a detector's parameter model: the flat fields of
# `detection` are LatencySpike's, each other section is read off DetectionSettings.
SECTIONS: dict[str, type[DetectorParams]] = {"detection": LatencySpikeParams} | {
    f"detection.{name}": info.annotation
    for name, info in DetectionSettings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, DetectorParams)
}


@dataclass(frozen=True)
class Case:
    """Break a rule through ``section``'s environment or by building ``build``."""

    values: dict[str, Any]
    message: str
    section: str = ""
    build: type[Any] | None = None

    @property
    def model(self) -> type[DetectorParams]:
        return self.build.Params if self.build is not None else SECTIONS[self.section]


def env(section: str, values: dict[str, Any], line: str) -> Case:
    return Case(values, line, section=section)


def build(cls: type[Any], values: dict[str, Any], message: str) -> Case:
    return Case(values, message, build=cls)


D = "detection"
CS, ER, TL, SB, EN = (
    "detection.count_spike",
    "detection.error_ratio",
    "detection.tail_latency",
    "detection.seasonal",
    "detection.ensemble",
)

CASES = [
    # LatencySpike: the flat fields of `detection`.
    env(D, {"window": 5}, "detection.window (FIRELINE_DETECTION__WINDOW) must be at least 10; got '5'"),
    env(D, {"threshold": 0}, "detection.threshold (FIRELINE_DETECTION__THRESHOLD) must be positive; got '0'"),
    env(D, {"min_ratio": 0.5}, "detection.min_ratio (FIRELINE_DETECTION__MIN_RATIO) must be at least 1; got '0.5'"),
    env(D, {"min_delta": -1}, "detection.min_delta (FIRELINE_DETECTION__MIN_DELTA) must not be negative; got '-1'"),
    env(D, {"consecutive": 0}, "detection.consecutive (FIRELINE_DETECTION__CONSECUTIVE) must be at least 1; got '0'"),
    env(D, {"warmup": 0}, "detection.warmup (FIRELINE_DETECTION__WARMUP) must be at least 1; got '0'"),
    env(D, {"min_spread": -0.1}, "detection.min_spread (FIRELINE_DETECTION__MIN_SPREAD) must not be negative; got '-0.1'"),
    env(D, {"warmup": 200}, "detection.warmup (FIRELINE_DETECTION__WARMUP) must be at most detection.window (120); got 200"),
    env(D, {"adapt_after": 3}, "detection.adapt_after (FIRELINE_DETECTION__ADAPT_AFTER) must be larger than detection.consecutive (3); got 3"),
    # CountSpike (the rules of TailRiseParams, which ErrorRatio shares).
    env(CS, {"window": 5}, "detection.count_spike.window (FIRELINE_DETECTION__COUNT_SPIKE__WINDOW) must be at least 10; got '5'"),
    env(CS, {"p_value": 0}, "detection.count_spike.p_value (FIRELINE_DETECTION__COUNT_SPIKE__P_VALUE) must be positive; got '0'"),
    env(CS, {"p_value": 0.5}, "detection.count_spike.p_value (FIRELINE_DETECTION__COUNT_SPIKE__P_VALUE) must be less than 0.5; got '0.5'"),
    env(CS, {"min_ratio": 0.9}, "detection.count_spike.min_ratio (FIRELINE_DETECTION__COUNT_SPIKE__MIN_RATIO) must be at least 1; got '0.9'"),
    env(CS, {"min_delta": -1}, "detection.count_spike.min_delta (FIRELINE_DETECTION__COUNT_SPIKE__MIN_DELTA) must not be negative; got '-1'"),
    env(CS, {"consecutive": 0}, "detection.count_spike.consecutive (FIRELINE_DETECTION__COUNT_SPIKE__CONSECUTIVE) must be at least 1; got '0'"),
    env(CS, {"warmup": 0}, "detection.count_spike.warmup (FIRELINE_DETECTION__COUNT_SPIKE__WARMUP) must be at least 1; got '0'"),
    env(CS, {"warmup": 121}, "detection.count_spike.warmup (FIRELINE_DETECTION__COUNT_SPIKE__WARMUP) must be at most detection.count_spike.window (120); got 121"),
    env(CS, {"adapt_after": 2}, "detection.count_spike.adapt_after (FIRELINE_DETECTION__COUNT_SPIKE__ADAPT_AFTER) must be larger than detection.count_spike.consecutive (3); got 2"),
    # ErrorRatio's own.
    env(ER, {"min_delta": -0.1}, "detection.error_ratio.min_delta (FIRELINE_DETECTION__ERROR_RATIO__MIN_DELTA) must not be negative; got '-0.1'"),
    env(ER, {"min_delta": 1}, "detection.error_ratio.min_delta (FIRELINE_DETECTION__ERROR_RATIO__MIN_DELTA) must be less than 1; got '1'"),
    env(ER, {"max_trials": 1}, "detection.error_ratio.max_trials (FIRELINE_DETECTION__ERROR_RATIO__MAX_TRIALS) must be at least 2; got '1'"),
    env(ER, {"min_errors": -1}, "detection.error_ratio.min_errors (FIRELINE_DETECTION__ERROR_RATIO__MIN_ERRORS) must not be negative; got '-1'"),
    # TailLatency.
    env(TL, {"quantile": 0}, "detection.tail_latency.quantile (FIRELINE_DETECTION__TAIL_LATENCY__QUANTILE) must be positive; got '0'"),
    env(TL, {"quantile": 1}, "detection.tail_latency.quantile (FIRELINE_DETECTION__TAIL_LATENCY__QUANTILE) must be less than 1; got '1'"),
    env(TL, {"window": 5}, "detection.tail_latency.window (FIRELINE_DETECTION__TAIL_LATENCY__WINDOW) must be at least 10; got '5'"),
    env(TL, {"step": 0}, "detection.tail_latency.step (FIRELINE_DETECTION__TAIL_LATENCY__STEP) must be at least 1; got '0'"),
    env(TL, {"history": 4}, "detection.tail_latency.history (FIRELINE_DETECTION__TAIL_LATENCY__HISTORY) must be at least 5; got '4'"),
    env(TL, {"threshold": 0}, "detection.tail_latency.threshold (FIRELINE_DETECTION__TAIL_LATENCY__THRESHOLD) must be positive; got '0'"),
    env(TL, {"min_ratio": 0.9}, "detection.tail_latency.min_ratio (FIRELINE_DETECTION__TAIL_LATENCY__MIN_RATIO) must be at least 1; got '0.9'"),
    env(TL, {"min_delta": -1}, "detection.tail_latency.min_delta (FIRELINE_DETECTION__TAIL_LATENCY__MIN_DELTA) must not be negative; got '-1'"),
    env(TL, {"consecutive": 0}, "detection.tail_latency.consecutive (FIRELINE_DETECTION__TAIL_LATENCY__CONSECUTIVE) must be at least 1; got '0'"),
    env(TL, {"warmup": 0}, "detection.tail_latency.warmup (FIRELINE_DETECTION__TAIL_LATENCY__WARMUP) must be at least 1; got '0'"),
    env(TL, {"min_spread": -1}, "detection.tail_latency.min_spread (FIRELINE_DETECTION__TAIL_LATENCY__MIN_SPREAD) must not be negative; got '-1'"),
    env(TL, {"step": 600}, "detection.tail_latency.step (FIRELINE_DETECTION__TAIL_LATENCY__STEP) must be at most detection.tail_latency.window (500); got 600"),
    env(TL, {"warmup": 31}, "detection.tail_latency.warmup (FIRELINE_DETECTION__TAIL_LATENCY__WARMUP) must be at most detection.tail_latency.history (30); got 31"),
    env(TL, {"adapt_after": 2}, "detection.tail_latency.adapt_after (FIRELINE_DETECTION__TAIL_LATENCY__ADAPT_AFTER) must be larger than detection.tail_latency.consecutive (2); got 2"),
    # SeasonalBaseline.
    env(SB, {"season": "month"}, "detection.seasonal.season (FIRELINE_DETECTION__SEASONAL__SEASON) must be 'day' or 'week'; got 'month'"),
    env(SB, {"min_bucket_points": 4}, "detection.seasonal.min_bucket_points (FIRELINE_DETECTION__SEASONAL__MIN_BUCKET_POINTS) must be at least 5; got '4'"),
    env(SB, {"memory": 4}, "detection.seasonal.memory (FIRELINE_DETECTION__SEASONAL__MEMORY) must be at least 5; got '4'"),
    env(SB, {"window": 9}, "detection.seasonal.window (FIRELINE_DETECTION__SEASONAL__WINDOW) must be at least 10; got '9'"),
    env(SB, {"warmup": 4}, "detection.seasonal.warmup (FIRELINE_DETECTION__SEASONAL__WARMUP) must be at least 5; got '4'"),
    env(SB, {"threshold": 0}, "detection.seasonal.threshold (FIRELINE_DETECTION__SEASONAL__THRESHOLD) must be positive; got '0'"),
    env(SB, {"min_delta": -1}, "detection.seasonal.min_delta (FIRELINE_DETECTION__SEASONAL__MIN_DELTA) must not be negative; got '-1'"),
    env(SB, {"min_spread": -1}, "detection.seasonal.min_spread (FIRELINE_DETECTION__SEASONAL__MIN_SPREAD) must not be negative; got '-1'"),
    env(SB, {"clip": 0}, "detection.seasonal.clip (FIRELINE_DETECTION__SEASONAL__CLIP) must be positive; got '0'"),
    env(SB, {"direction": "sideways"}, "detection.seasonal.direction (FIRELINE_DETECTION__SEASONAL__DIRECTION) must be 'both', 'up' or 'down'; got 'sideways'"),
    env(SB, {"consecutive": 0}, "detection.seasonal.consecutive (FIRELINE_DETECTION__SEASONAL__CONSECUTIVE) must be at least 1; got '0'"),
    env(SB, {"utc_offset_hours": -24}, "detection.seasonal.utc_offset_hours (FIRELINE_DETECTION__SEASONAL__UTC_OFFSET_HOURS) must be greater than -24; got '-24'"),
    env(SB, {"utc_offset_hours": 24}, "detection.seasonal.utc_offset_hours (FIRELINE_DETECTION__SEASONAL__UTC_OFFSET_HOURS) must be less than 24; got '24'"),
    env(SB, {"interval": 0}, "detection.seasonal.interval (FIRELINE_DETECTION__SEASONAL__INTERVAL) must be positive; got '0'"),
    env(SB, {"warmup": 241}, "detection.seasonal.warmup (FIRELINE_DETECTION__SEASONAL__WARMUP) must be at most detection.seasonal.window (240); got 241"),
    env(SB, {"adapt_after": 3}, "detection.seasonal.adapt_after (FIRELINE_DETECTION__SEASONAL__ADAPT_AFTER) must be larger than detection.seasonal.consecutive (3); got 3"),
    # MetricEnsemble, and the context model's parameters it carries.
    env(EN, {"grids": []}, "detection.ensemble.grids (FIRELINE_DETECTION__ENSEMBLE__GRIDS) must have at least 1 item; got []"),
    env(EN, {"grids": [1, 4]}, "detection.ensemble.grids.0 (FIRELINE_DETECTION__ENSEMBLE__GRIDS) must be at least 2; got 1"),
    env(EN, {"grids": [3, 65]}, "detection.ensemble.grids.1 (FIRELINE_DETECTION__ENSEMBLE__GRIDS) must be at most 64; got 65"),
    env(EN, {"order": 0}, "detection.ensemble.order (FIRELINE_DETECTION__ENSEMBLE__ORDER) must be at least 1; got '0'"),
    env(EN, {"order": 9}, "detection.ensemble.order (FIRELINE_DETECTION__ENSEMBLE__ORDER) must be at most 8; got '9'"),
    env(EN, {"memory_kib": 0}, "detection.ensemble.memory_kib (FIRELINE_DETECTION__ENSEMBLE__MEMORY_KIB) must be at least 1; got '0'"),
    env(EN, {"memory_kib": 65}, "detection.ensemble.memory_kib (FIRELINE_DETECTION__ENSEMBLE__MEMORY_KIB) must be at most 64; got '65'"),
    env(EN, {"coarse_step": 1}, "detection.ensemble.coarse_step (FIRELINE_DETECTION__ENSEMBLE__COARSE_STEP) must be at least 2; got '1'"),
    env(EN, {"smoothing": 0}, "detection.ensemble.smoothing (FIRELINE_DETECTION__ENSEMBLE__SMOOTHING) must be at least 1; got '0'"),
    env(EN, {"stuck_after": 0}, "detection.ensemble.stuck_after (FIRELINE_DETECTION__ENSEMBLE__STUCK_AFTER) must be at least 1; got '0'"),
    env(EN, {"calibration_window": 0}, "detection.ensemble.calibration_window (FIRELINE_DETECTION__ENSEMBLE__CALIBRATION_WINDOW) must be at least 1; got '0'"),
    env(EN, {"calibration_allowance": 0}, "detection.ensemble.calibration_allowance (FIRELINE_DETECTION__ENSEMBLE__CALIBRATION_ALLOWANCE) must be positive; got '0'"),
    env(EN, {"calibration_strength": -0.1}, "detection.ensemble.calibration_strength (FIRELINE_DETECTION__ENSEMBLE__CALIBRATION_STRENGTH) must not be negative; got '-0.1'"),
    env(EN, {"margin": -0.1}, "detection.ensemble.margin (FIRELINE_DETECTION__ENSEMBLE__MARGIN) must not be negative; got '-0.1'"),
    env(EN, {"warmup": 9}, "detection.ensemble.warmup (FIRELINE_DETECTION__ENSEMBLE__WARMUP) must be at least 10; got '9'"),
    env(EN, {"threshold": 0}, "detection.ensemble.threshold (FIRELINE_DETECTION__ENSEMBLE__THRESHOLD) must be positive; got '0'"),
    env(EN, {"threshold": 1.5}, "detection.ensemble.threshold (FIRELINE_DETECTION__ENSEMBLE__THRESHOLD) must be at most 1; got '1.5'"),
    env(EN, {"rest": -1}, "detection.ensemble.rest (FIRELINE_DETECTION__ENSEMBLE__REST) must not be negative; got '-1'"),
    env(EN, {"window": 39}, "detection.ensemble.window (FIRELINE_DETECTION__ENSEMBLE__WINDOW) must be at least 40; got '39'"),
    env(EN, {"min_spread": 0}, "detection.ensemble.min_spread (FIRELINE_DETECTION__ENSEMBLE__MIN_SPREAD) must be positive; got '0'"),
    env(EN, {"consecutive": 0}, "detection.ensemble.consecutive (FIRELINE_DETECTION__ENSEMBLE__CONSECUTIVE) must be at least 1; got '0'"),
    env(EN, {"adapt_after": 3}, "detection.ensemble.adapt_after (FIRELINE_DETECTION__ENSEMBLE__ADAPT_AFTER) must be larger than detection.ensemble.consecutive (3); got 3"),
    env(EN, {"jump_alarm_fraction": -0.1}, "detection.ensemble.jump_alarm_fraction (FIRELINE_DETECTION__ENSEMBLE__JUMP_ALARM_FRACTION) must not be negative; got '-0.1'"),
    build(ContextModel, {"warmup": 0}, "ContextModel: warmup must be at least 1; got 0."),
    # The drift family's shared rules, then each detector's own.
    build(KSDrift, {"reference_size": 19}, "KSDrift: reference_size must be at least 20; got 19."),
    build(KSDrift, {"step": 0}, "KSDrift: step must be at least 1; got 0."),
    build(KSDrift, {"false_alarm_rate": 0}, "KSDrift: false_alarm_rate must be positive; got 0."),
    build(KSDrift, {"false_alarm_rate": 0.01}, "KSDrift: false_alarm_rate must be less than 0.01; got 0.01."),
    build(KSDrift, {"consecutive": 0}, "KSDrift: consecutive must be at least 1; got 0."),
    build(KSDrift, {"clear_ratio": 0}, "KSDrift: clear_ratio must be positive; got 0."),
    build(KSDrift, {"clear_ratio": 1.5}, "KSDrift: clear_ratio must be at most 1; got 1.5."),
    build(KSDrift, {"min_reference": 1}, "KSDrift: min_reference must be at least 2; got 1."),
    build(MeanShift, {"min_reference": 300, "reference_size": 200}, "MeanShift: min_reference must be at most reference_size (200); got 300."),
    build(OutOfRange, {"window": 9, "step": 5}, "OutOfRange: window must be at least 10; got 9."),
    build(OutOfRange, {"step": 501}, "OutOfRange: step must be at most window (500); got 501."),
    build(KSDrift, {"sketch_size": 15}, "KSDrift: sketch_size must be at least 16; got 15."),
    build(PSIDrift, {"bins": 1}, "PSIDrift: bins must be at least 2; got 1."),
    build(PSIDrift, {"bins": 101}, "PSIDrift: bins must be at most 100; got 101."),
    build(WassersteinDrift, {"sketch_size": 15}, "WassersteinDrift: sketch_size must be at least 16; got 15."),
    build(WassersteinDrift, {"min_shift": 0}, "WassersteinDrift: min_shift must be positive; got 0."),
    build(WassersteinDrift, {"draws": 15}, "WassersteinDrift: draws must be at least 16; got 15."),
    build(MeanShift, {"consecutive": 0}, "MeanShift: consecutive must be at least 1; got 0."),
    build(MeanShift, {"shift": 0.04}, "MeanShift: shift must be at least 0.05; got 0.04."),
    build(MeanShift, {"shift": 5.5}, "MeanShift: shift must be at most 5; got 5.5."),
    build(MeanShift, {"clip": 0.5}, "MeanShift: clip must be at least 1; got 0.5."),
    build(ChiSquareDrift, {"max_categories": 0}, "ChiSquareDrift: max_categories must be at least 1; got 0."),
    build(ChiSquareDrift, {"min_expected": 0}, "ChiSquareDrift: min_expected must be positive; got 0."),
    build(UnseenCategories, {"max_categories": 0}, "UnseenCategories: max_categories must be at least 1; got 0."),
    build(DomainClassifier, {"rows": 99}, "DomainClassifier: rows must be at least 100; got 99."),
    build(DomainClassifier, {"every": 0}, "DomainClassifier: every must be at least 1; got 0."),
    build(DomainClassifier, {"false_alarm_rate": 0}, "DomainClassifier: false_alarm_rate must be positive; got 0."),
    build(DomainClassifier, {"false_alarm_rate": 0.01}, "DomainClassifier: false_alarm_rate must be less than 0.01; got 0.01."),
    build(DomainClassifier, {"consecutive": 0}, "DomainClassifier: consecutive must be at least 1; got 0."),
]  # fmt: skip


def case_id(case: Case) -> str:
    where = case.section or case.build.__name__  # type: ignore[union-attr]
    return f"{where}:" + ",".join(f"{k}={v}" for k, v in case.values.items())


@pytest.mark.parametrize("case", [c for c in CASES if c.section], ids=case_id)
def test_detection_settings__a_broken_rule_fails_at_load_naming_setting_env_var_and_rule(
    case, monkeypatch
):
    for name, value in case.values.items():
        env_var = "FIRELINE_" + f"{case.section}.{name}".replace(".", "__").upper()
        monkeypatch.setenv(env_var, value if isinstance(value, str) else json.dumps(value))
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == f"invalid fireline settings:\n  {case.message}"


@pytest.mark.parametrize("case", [c for c in CASES if c.build], ids=case_id)
def test_detector__a_broken_rule_is_refused_at_construction_naming_parameter_and_rule(case):
    with pytest.raises(DetectorError) as err:
        case.build(**case.values)  # type: ignore[misc]
    assert str(err.value) == case.message


# -- every rule is one of the cases above ------------------------------------------------

_KINDS = {
    annotated_types.Ge: "greater_than_equal",
    annotated_types.Gt: "greater_than",
    annotated_types.Le: "less_than_equal",
    annotated_types.Lt: "less_than",
    annotated_types.MinLen: "too_short",
}


def models() -> set[type[DetectorParams]]:
    """Every parameter model of a detector, and the models they extend."""
    roots = [cls.Params for cls in detectors.REGISTRY.values()]
    roots += [ContextModelParams, DomainClassifierParams]
    return {
        base
        for model in roots
        for base in model.__mro__
        if isinstance(base, type)
        and issubclass(base, DetectorParams)
        and base is not DetectorParams
    }


def declared_in(model: type[DetectorParams], name: str) -> type:
    return next(k for k in model.__mro__ if name in inspect.get_annotations(k))


def rule_declared_in(model: type[DetectorParams], rule: tuple[str, str, str]) -> type:
    return next(
        k
        for k in model.__mro__
        if rule in [(r.field, r.relation, r.other) for r in k.__dict__.get("rules", ())]
    )


def declared_rules(model: type[DetectorParams]) -> set[tuple[type, str, str]]:
    """(declaring model, field, rule) of the rules a model itself declares."""
    found: set[tuple[type, str, str]] = set()
    for name, info in model.model_fields.items():
        if declared_in(model, name) is not model:
            continue
        found |= {(model, name, _KINDS[type(m)]) for m in info.metadata if type(m) in _KINDS}
        if get_origin(info.annotation) is Literal:
            found.add((model, name, "literal_error"))
        for arg in get_args(info.annotation):
            for inner in getattr(arg, "__metadata__", ()):
                if isinstance(inner, FieldInfo):
                    found |= {(model, name, f"item {_KINDS[type(m)]}") for m in inner.metadata}
    for rule in model.__dict__.get("rules", ()):
        found.add((model, rule.field, f"{rule.relation} {rule.other}"))
    return found


def broken_rules(case: Case) -> set[tuple[type, str, str]]:
    model = case.model
    try:
        model(**case.values)
    except ValidationError as exc:
        found = set()
        for error in exc.errors():
            if error["type"] == RULE_ERROR:
                ctx = error["ctx"]
                rule = (ctx["field"], ctx["relation"], ctx["other"])
                found.add((rule_declared_in(model, rule), rule[0], f"{rule[1]} {rule[2]}"))
            else:
                name = str(error["loc"][0])
                item = "item " if len(error["loc"]) > 1 else ""
                found.add((declared_in(model, name), name, item + error["type"]))
        return found
    raise AssertionError(f"{case_id(case)} breaks no rule")


def test_every_rule_is_covered():
    every = set().union(*(declared_rules(m) for m in models()))
    covered: set[tuple[type, str, str]] = set()
    for case in CASES:
        broken = broken_rules(case)
        assert len(broken) == 1, f"{case_id(case)} breaks {broken}: one rule per case"
        covered |= broken
    missing = sorted(f"{m.__name__}.{field}: {rule}" for m, field, rule in every - covered)
    assert not missing, f"rules without a case: {missing}"
    assert len(every) == len(CASES)  # no rule broken twice

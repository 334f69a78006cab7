"""Plain records the prediction-log monitor consumes and produces (no pydantic, no agents)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from detectors.monitor.comparison import VersionComparison

FeatureValue = float | str | None


@dataclass(frozen=True, slots=True)
class Prediction:
    """One logged prediction (the contract's prediction event, already validated)."""

    timestamp: float  # epoch seconds
    model: str
    model_version: str
    prediction_id: str
    features: Mapping[str, FeatureValue]
    prediction: float | str | Mapping[str, object]
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """The ground truth of an earlier prediction, joined by ``prediction_id``."""

    timestamp: float
    model: str
    prediction_id: str
    label: float | str | bool


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's alarm rose (or, for ``model_version_change``, a version started).

    A ``version_regression`` names the worse version in ``model_version`` and the
    version it was compared with in ``previous_version``; its ``comparison`` holds
    both versions' figures. ``model_version_accepted`` (not a detection) carries the
    comparison that let the version become the baseline.
    """

    timestamp: float  # event time of the event that raised it
    model: str
    model_version: str
    kind: str
    feature: str | None
    score: float
    message: str
    cleared: bool = False  # the alarm went off again (not printed by the replay)
    previous_version: str | None = None  # the version before / compared with
    observed: float | None = None  # the value that raised it, where that is one number
    baseline: float | None = None  # ...and what was normal
    comparison: VersionComparison | None = None  # version_regression, model_version_accepted
    held: Held | None = None  # HELD_TEST: stands where a test's findings will go


@dataclass(frozen=True, slots=True, eq=False)
class Held:
    """A domain-classifier test running in another process, for a caller that keeps the order.

    Its finding (if any) belongs where the ``held_test`` finding carrying this
    stands: feeding inline, it would have been there. ``settle`` waits for the
    test, applies its outcome (once) and returns the findings it raised.
    """

    ready: Callable[[], bool]
    settle: Callable[[], list[Finding]]


# Detection kinds.
COVARIATE_DRIFT = "covariate_drift"
PREDICTION_DRIFT = "prediction_drift"
PERFORMANCE_DRIFT = "performance_drift"
DATA_QUALITY = "data_quality"
LATENCY_SPIKE = "latency_spike"
MULTIVARIATE_DRIFT = "multivariate_drift"
VERSION_REGRESSION = "version_regression"  # a version is worse than the one before it
MODEL_VERSION_CHANGE = "model_version_change"  # a change event, not a detection
HELD_TEST = "held_test"  # a placeholder, for a caller that asked for held findings
MODEL_VERSION_ACCEPTED = "model_version_accepted"  # a version became the baseline; not one

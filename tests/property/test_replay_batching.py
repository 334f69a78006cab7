"""Replay in micro-batches finds exactly what feeding one event at a time finds.

Whatever the interleaving of labels (early, late, for predictions not seen yet,
duplicated ids), version changes and series, and wherever the batches are cut.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.cli.replay import replay_predictions
from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.offline import Batching, detect
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.settings import DetectionSettings
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import Label, Prediction

CONFIG = MonitorConfig(
    warmup=10, reference_size=200, window=50, step=25, label_reference=100, classifier_every=0
)
T0 = 1795255200.0

batchings = st.builds(
    Batching,
    window_s=st.sampled_from([0.5, 3.0, 50.0, 1e9]),
    max_events=st.integers(min_value=1, max_value=300),
)


@st.composite
def prediction_logs(draw: st.DrawFn) -> list[Prediction | Label]:
    """Predictions of two models (a version change, a shift) with labels anywhere."""
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(250, 450))
    version_at = draw(st.sampled_from([None, 120, 300]))
    shift_at = draw(st.integers(200, 600))
    label_every = draw(st.integers(1, 4))
    lag = draw(st.integers(-5, 40))  # negative: labels for predictions not seen yet
    max_versions_churn = draw(st.booleans())
    rng = np.random.default_rng(seed)
    events: list[Prediction | Label] = []
    for i in range(n):
        model = "fraud" if i % 3 else "churn"
        version = "8" if version_at is not None and i >= version_at else "7"
        if max_versions_churn and i % 97 == 96:
            version = f"v{i}"  # a burst of versions retires the older ones
        shift = 3.0 if i >= shift_at else 0.0
        events.append(
            Prediction(
                T0 + i,
                model,
                version,
                f"p-{i % 400}",  # ids repeat: a later prediction may reuse a waiting label's id
                {"amount": float(rng.normal(10 + shift, 1)), "kind": str(rng.choice(["a", "b"]))},
                float(rng.random()),
                float(rng.normal(20, 1)),
            )
        )
        if i % label_every == 0:
            target = i - lag
            events.append(
                Label(
                    T0 + i + 0.5, model, f"p-{target % 400}", int(rng.random() < 0.3 + shift / 10)
                )
            )
    return events


def one_at_a_time(events: list[Prediction | Label]) -> list[Any]:
    monitor = PredictionLogMonitor(CONFIG)
    return [finding for event in events for finding in monitor.process([event])]


def _key(finding: Any) -> tuple[Any, ...]:
    return (
        finding["timestamp"],
        finding["kind"],
        finding["model_version"],
        str(finding["feature"]),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prediction_logs(), batchings)
def test_replay_predictions__batched_equals_event_at_a_time(events, batching):
    expected = [
        {
            "timestamp": d.timestamp,
            "model": d.model,
            "model_version": d.model_version,
            "kind": d.kind,
            "feature": d.feature,
            "score": round(d.score, 6),
            "message": d.message,
        }
        for d in one_at_a_time(events)
        if not d.cleared
    ]
    batched = list(replay_predictions(events, CONFIG, batching))
    assert sorted(batched, key=_key) == sorted(expected, key=_key)


@st.composite
def metric_streams(draw: st.DrawFn) -> list[MetricEvent]:
    """Samples of several series (latency, errors, others) interleaved, with level shifts."""
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(100, 800))
    series = draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    names = ["latency_ms", "cpu_utilization", "http_errors_total"]
    spikes = {s: int(rng.integers(50, 800)) for s in range(series)}
    out = []
    for i in range(n):
        s = int(rng.integers(series))
        value = float(rng.normal(50, 2)) * (6 if spikes[s] <= i < spikes[s] + 30 else 1)
        out.append(
            MetricEvent(
                timestamp=T0 + i * 0.25,
                name=names[s % 3],
                value=round(abs(value), 2),
                labels={"service": f"svc-{s}"},
            )
        )
    return out


def _detection_key(d: Any) -> tuple[Any, ...]:
    return (d.signal.at, d.series, d.kind, d.cleared)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metric_streams(), batchings)
def test_detect__metric_detections_do_not_depend_on_the_batches(events, batching):
    pipeline = MetricPipeline(DetectionSettings())
    expected = [d for event in events for d in pipeline.process([event]) if not d.refresh]
    batched = [d for d in detect(events, batching=batching) if not getattr(d, "refresh", False)]
    assert sorted(batched, key=_detection_key) == sorted(expected, key=_detection_key)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prediction_logs(), batchings)
def test_detect__prediction_detections_do_not_depend_on_the_batches(records, batching):
    events: list[PredictionEvent | LabelEvent] = [
        LabelEvent(
            timestamp=r.timestamp, model=r.model, prediction_id=r.prediction_id, label=r.label
        )
        if isinstance(r, Label)
        else PredictionEvent(
            timestamp=r.timestamp,
            model=r.model,
            model_version=r.model_version,
            prediction_id=r.prediction_id,
            features=dict(r.features),
            prediction=r.prediction,
            latency_ms=r.latency_ms,
        )
        for r in records
    ]
    pipeline = PredictionPipeline(CONFIG)
    expected: list[Any] = []
    for event in events:
        detections, changes = pipeline.process([event])
        expected += changes + [d for d in detections if not d.refresh]
    batched = [
        d
        for d in detect(events, config=CONFIG, batching=batching)
        if not getattr(d, "refresh", False)
    ]
    assert sorted(map(_plain, batched)) == sorted(map(_plain, expected))


def _plain(output: Any) -> str:
    """A detection or change as JSON, floats to 12 significant digits.

    A drift statistic summed over a batch may differ in its last bit from the same
    sum taken event by event; nothing else may differ.
    """
    return json.dumps(_rounded(output.model_dump()), sort_keys=True)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value

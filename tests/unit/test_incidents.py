import numpy as np

from agents.events import MetricEvent
from agents.incidents import Detection, IncidentManager
from agents.pipeline import MetricPipeline
from agents.settings import Detection as DetectionSettings
from playbooks.incident import Severity, Signal, Status, Transition
from playbooks.messages import incident_text

LABELS = {"service": "fraud-api", "model": "fraud", "model_version": "7"}


def detection(at: float, observed: float = 400.0, cleared: bool = False) -> Detection:
    signal = Signal(
        detector="LatencySpike",
        series="latency_ms{service=fraud-api}",
        observed=observed,
        baseline=50.0,
        score=0.9,
        at=at,
    )
    return Detection("latency_spike", signal.series, LABELS, signal, cleared=cleared)


def test_manager__opens_updates_and_resolves_one_incident():
    manager = IncidentManager()
    opened = manager.on_detection(detection(100.0, observed=200.0))
    assert opened is not None
    assert (opened.transition, opened.status, opened.severity) == (
        Transition.OPENED,
        Status.OPEN,
        Severity.WARNING,
    )
    updated = manager.on_detection(detection(110.0, observed=400.0))
    assert updated is not None
    assert (updated.id, updated.transition, updated.count, updated.severity) == (
        opened.id,
        Transition.UPDATED,
        2,
        Severity.CRITICAL,
    )
    resolved = manager.on_detection(detection(150.0, cleared=True))
    assert resolved is not None
    assert (resolved.id, resolved.transition, resolved.status, resolved.last_seen) == (
        opened.id,
        Transition.RESOLVED,
        Status.RESOLVED,
        150.0,
    )
    assert manager.open_incidents == []
    assert manager.on_detection(detection(160.0, cleared=True)) is None


def test_manager__incident_id_is_stable_across_managers():
    a = IncidentManager().on_detection(detection(100.0))
    b = IncidentManager().on_detection(detection(100.0))
    assert a is not None and b is not None
    assert a.id == b.id
    assert a.id.startswith("inc-")


def test_incident_text__names_subject_and_observed_vs_normal():
    incident = IncidentManager().on_detection(detection(1795255200.0))
    assert incident is not None
    text = incident_text(incident)
    assert text.splitlines() == [
        ":rotating_light: [CRITICAL] Latency spike on fraud-api",
        "Subject: fraud-api / model fraud v7",
        "Since: 2026-11-21 10:00:00Z",
        "latency_ms{service=fraud-api}: observed 400.0 vs normal 50.0 (8.0x), detector LatencySpike",
        f"Incident {incident.id} (open, 1 detections)",
    ]


def metric_batch(values: list[float], start: float = 0.0) -> list[MetricEvent]:
    return [
        MetricEvent(timestamp=start + i, name="latency_ms", value=v, labels=LABELS)
        for i, v in enumerate(values)
    ]


def test_pipeline__one_detection_per_spike_per_series():
    pipeline = MetricPipeline(DetectionSettings())
    rng = np.random.default_rng(5)
    normal = rng.normal(50, 2, 300).tolist()
    assert pipeline.process(metric_batch(normal)) == []
    rise = pipeline.process(metric_batch([400.0] * 10, start=300))
    assert [(d.kind, d.cleared) for d in rise] == [("latency_spike", False)]
    assert rise[0].signal.baseline == np_approx(50, 2)
    assert rise[0].signal.observed == 400.0
    assert rise[0].signal.at == 309.0
    clear = pipeline.process(metric_batch(rng.normal(50, 2, 10).tolist(), start=310))
    assert [d.cleared for d in clear] == [True]


def test_pipeline__ignores_non_latency_metrics():
    pipeline = MetricPipeline(DetectionSettings())
    events = [
        MetricEvent(timestamp=i, name="cpu_utilization", value=0.4 if i < 300 else 0.99, labels={})
        for i in range(400)
    ]
    assert pipeline.process(events) == []
    assert pipeline.detectors == {}


def np_approx(value: float, tol: float):
    import pytest

    return pytest.approx(value, abs=tol)


def test_pipeline__series_beyond_max_series_are_counted_not_watched():
    pipeline = MetricPipeline(DetectionSettings(max_series=2))
    events = [
        MetricEvent(timestamp=i, name="latency_ms", value=50.0, labels={"request_id": str(i % 5)})
        for i in range(50)
    ]
    pipeline.process(events)
    assert len(pipeline.detectors) == 2
    assert pipeline.unwatched == 30

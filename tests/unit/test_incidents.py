import numpy as np
import pytest

from agents.events import MetricEvent
from agents.incidents import Detection, IncidentManager
from agents.pipeline import MetricPipeline
from agents.settings import Detection as DetectionSettings
from detectors import MetricEnsemble
from playbooks.incident import Resolution, Severity, Signal, Status, Transition
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


def test_manager__opens_dedups_and_resolves_one_incident():
    manager = IncidentManager()
    opened = manager.on_detection(detection(100.0, observed=200.0))
    assert opened is not None
    assert (opened.transition, opened.status, opened.severity) == (
        Transition.OPENED,
        Status.OPEN,
        Severity.WARNING,
    )
    assert manager.on_detection(detection(110.0, observed=400.0)) is None
    assert manager.open_incidents == [opened]
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
    reopened = manager.on_detection(detection(170.0))
    assert reopened is not None
    assert reopened.id != opened.id


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
    rise = pipeline.process(metric_batch([400.0, 420.0, 410.0, 400.0, 400.0], start=300))
    assert [(d.kind, d.cleared) for d in rise] == [("latency_spike", False)]
    assert rise[0].signal.baseline == np_approx(50, 2)
    assert rise[0].signal.observed == 420.0  # the peak of the run that raised it
    assert rise[0].signal.at == 302.0  # the third spiking sample, not the batch's last
    clear = pipeline.process(metric_batch(rng.normal(50, 2, 10).tolist(), start=305))
    assert [(d.cleared, d.signal.at) for d in clear] == [(True, 307.0)]


@pytest.mark.parametrize("batch_size", [1, 7, 100, 1000])
def test_pipeline__detections_do_not_depend_on_batch_size(batch_size):
    rng = np.random.default_rng(9)
    values = [*rng.normal(50, 2, 300), *[420.0] * 8, *rng.normal(50, 2, 100)]
    events = metric_batch([float(v) for v in values])
    pipeline = MetricPipeline(DetectionSettings())
    found = []
    for start in range(0, len(events), batch_size):
        found += pipeline.process(events[start : start + batch_size])
    manager = IncidentManager()
    incidents = [manager.on_detection(d) for d in found]
    assert [(d.cleared, d.signal.at) for d in found] == [(False, 302.0), (True, 310.0)]
    assert incidents[0] is not None and incidents[0].id == EXPECTED_ID


EXPECTED_ID = (
    IncidentManager()
    .on_detection(
        Detection(
            "latency_spike",
            "latency_ms{model=fraud,model_version=7,service=fraud-api}",
            LABELS,
            Signal(
                detector="LatencySpike",
                series="latency_ms{model=fraud,model_version=7,service=fraud-api}",
                observed=420.0,
                baseline=50.0,
                score=0.9,
                at=302.0,
            ),
        )
    )
    .id
)  # type: ignore[union-attr]


def cpu_events(n_normal: int = 300, n_high: int = 100) -> list[MetricEvent]:
    rng = np.random.default_rng(4)
    values = [*rng.normal(0.4, 0.02, n_normal), *[0.99] * n_high]
    return [
        MetricEvent(timestamp=i, name="cpu_utilization", value=float(v), labels={"service": "a"})
        for i, v in enumerate(values)
    ]


def test_pipeline__other_metrics_get_the_default_detector():
    pipeline = MetricPipeline(DetectionSettings())
    found = pipeline.process(cpu_events())
    assert [(d.kind, d.cleared, d.signal.at) for d in found] == [("metric_anomaly", False, 302)]
    assert found[0].signal.detector == "MetricEnsemble"
    assert found[0].signal.observed == 0.99
    assert found[0].signal.baseline == np_approx(0.4, 0.02)
    (detector,) = pipeline.detectors.values()
    assert isinstance(detector, MetricEnsemble)


def test_pipeline__other_metrics_can_be_ignored():
    pipeline = MetricPipeline(DetectionSettings(watch_other_metrics=False))
    assert pipeline.process(cpu_events()) == []
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


def test_incident_text__resolved_after_recovery_and_at_a_new_level():
    manager = IncidentManager()
    opened = manager.on_detection(detection(1795255200.0))
    recovered = manager.on_detection(detection(1795255920.0, observed=49.0, cleared=True))
    assert opened is not None and recovered is not None
    assert incident_text(recovered).splitlines()[0] == (
        ":white_check_mark: [RESOLVED] Latency spike on fraud-api after 12 min"
    )
    assert recovered.resolution is Resolution.RECOVERED

    manager.on_detection(detection(1795256000.0))
    shifted = Detection(
        "latency_spike",
        "latency_ms{service=fraud-api}",
        LABELS,
        Signal(
            detector="LatencySpike",
            series="latency_ms{service=fraud-api}",
            observed=99.0,
            baseline=50.0,
            score=0.9,
            at=1795256090.0,
        ),
        cleared=True,
        adapted=True,
    )
    resolved = manager.on_detection(shifted)
    assert resolved is not None and resolved.resolution is Resolution.NEW_NORMAL
    assert incident_text(resolved).splitlines()[:2] == [
        ":warning: [RESOLVED: NEW LEVEL] Latency spike on fraud-api after 90 s",
        (
            "It did not come back: latency_ms{service=fraud-api} settled at 99.0 (normal was 50.0)"
            " and is now treated as normal. Is that acceptable?"
        ),
    ]


def test_pipeline__adopted_level_resolves_as_new_normal():
    pipeline = MetricPipeline(DetectionSettings(window=40))
    rng = np.random.default_rng(6)
    events = metric_batch([float(v) for v in [*rng.normal(50, 2, 100), *rng.normal(100, 3, 300)]])
    found = pipeline.process(events)
    assert [(d.cleared, d.adapted) for d in found] == [(False, False), (True, True)]

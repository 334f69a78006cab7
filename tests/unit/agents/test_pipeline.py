import numpy as np
import pytest

from agents.incidents.manager import IncidentManager, SubjectState
from agents.pipelines.events import MetricEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.settings import DetectionSettings, Incidents
from detectors import MetricEnsemble
from fireline.detections import Detection
from fireline.incident import Signal

LABELS = {"service": "fraud-api", "model": "fraud", "model_version": "7"}


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


def test_pipeline__names_the_series_as_prometheus_does_keeping_its_key():
    pipeline = MetricPipeline(DetectionSettings())
    pipeline.process(metric_batch(np.random.default_rng(5).normal(50, 2, 300).tolist()))
    (rise,) = pipeline.process(metric_batch([400.0, 420.0, 410.0], start=300))
    assert rise.signal.selector == 'latency_ms{model="fraud",model_version="7",service="fraud-api"}'
    assert (
        rise.series
        == rise.signal.series
        == "latency_ms{model=fraud,model_version=7,service=fraud-api}"
    )
    assert "latency_ms{model=fraud,model_version=7,service=fraud-api}" in pipeline.detectors


@pytest.mark.parametrize("batch_size", [1, 7, 100, 1000])
def test_pipeline__detections_do_not_depend_on_batch_size(batch_size):
    rng = np.random.default_rng(9)
    values = [*rng.normal(50, 2, 300), *[420.0] * 8, *rng.normal(50, 2, 100)]
    events = metric_batch([float(v) for v in values])
    pipeline = MetricPipeline(DetectionSettings())
    found = []
    for start in range(0, len(events), batch_size):
        found += pipeline.process(events[start : start + batch_size])
    assert [(d.cleared, d.signal.at) for d in found] == [(False, 302.0), (True, 310.0)]
    opened = IncidentManager(Incidents()).on_detection(SubjectState(), found[0], 1000.0, [])
    assert opened[0].id == EXPECTED_ID


EXPECTED_ID = (
    IncidentManager(Incidents())
    .on_detection(
        SubjectState(),
        Detection(
            kind="latency_spike",
            series="latency_ms{model=fraud,model_version=7,service=fraud-api}",
            labels=LABELS,
            signal=Signal(
                detector="LatencySpike",
                series="latency_ms{model=fraud,model_version=7,service=fraud-api}",
                observed=420.0,
                baseline=50.0,
                score=0.9,
                at=302.0,
            ),
        ),
        0.0,
        [],
    )[0]
    .id
)


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
    assert [(d.kind, d.cleared, d.refresh, d.signal.at) for d in found] == [
        ("metric_anomaly", False, False, 302),
        ("metric_anomaly", False, True, 399),  # still on at the batch's end: re-sent
    ]
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
    return pytest.approx(value, abs=tol)


def test_pipeline__beyond_max_series_the_least_recently_seen_is_released():
    pipeline = MetricPipeline(DetectionSettings(max_series=2))
    events = [
        MetricEvent(timestamp=i, name="latency_ms", value=50.0, labels={"request_id": str(i % 5)})
        for i in range(50)
    ]
    pipeline.process(events)
    assert list(pipeline.detectors) == [
        "latency_ms{request_id=3}",
        "latency_ms{request_id=4}",
    ]  # every series got a detector; the two seen last stay
    assert pipeline.take_evicted() == {"idle": 0, "memory": 3}
    assert pipeline.take_evicted() == {"idle": 0, "memory": 0}  # read once


def test_pipeline__adopted_level_resolves_as_new_normal():
    pipeline = MetricPipeline(DetectionSettings(window=40))
    rng = np.random.default_rng(6)
    events = metric_batch([float(v) for v in [*rng.normal(50, 2, 100), *rng.normal(100, 3, 300)]])
    found = pipeline.process(events)
    assert [(d.cleared, d.adapted) for d in found] == [(False, False), (True, True)]


def test_pipeline__an_alarm_still_on_is_re_sent_every_refresh_period():
    pipeline = MetricPipeline(DetectionSettings(), refresh_s=10.0)
    rng = np.random.default_rng(5)
    pipeline.process(metric_batch(rng.normal(50, 2, 300).tolist()))
    (raised,) = pipeline.process(metric_batch([400.0] * 10, start=300))  # alarm at t=302
    assert (raised.cleared, raised.refresh, raised.signal.at) == (False, False, 302.0)
    (refresh,) = pipeline.process(metric_batch([400.0] * 5, start=310))
    assert (refresh.cleared, refresh.refresh, refresh.signal.at) == (False, True, 314.0)
    assert refresh.signal.baseline == raised.signal.baseline
    assert pipeline.process(metric_batch([400.0] * 2, start=315)) == []  # not due until 324


def test_pipeline__a_raise_carries_the_recent_points_as_evidence():
    pipeline = MetricPipeline(DetectionSettings(), evidence_points=20)
    rng = np.random.default_rng(5)
    values = [*rng.normal(50, 2, 300).tolist(), 400.0, 410.0, 420.0, 400.0]
    (raised,) = pipeline.process(metric_batch(values))
    assert len(raised.evidence) == 20
    assert raised.evidence[-1].at == raised.signal.at == 302.0  # up to the detection point
    assert [p.value for p in raised.evidence[-3:]] == [400.0, 410.0, 420.0]


class FakeTable:
    """The two things DetectorStore uses of a Faust table: its data and changelog sends."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent: list[tuple[int, bytes]] = []

    def send_changelog(self, partition: int, key: bytes, value: bytes | None, **_: object) -> None:
        self.sent.append((partition, key))


def test_pipeline__checkpointed_detectors_resume_where_they_were():
    from agents.kafka.detector_store import DetectorStore

    table = FakeTable()
    first = MetricPipeline(DetectionSettings(), store=DetectorStore(table))
    rng = np.random.default_rng(5)
    first.process(metric_batch(rng.normal(50, 2, 300).tolist()), partition=3)
    assert first.checkpoint() == 1 and first.checkpoint() == 0  # only what changed
    (series,) = first.detectors
    assert table.sent == [(3, series.encode())]

    restarted = MetricPipeline(DetectionSettings(), store=DetectorStore(table))
    spike = restarted.process(metric_batch([400.0] * 5, start=300), partition=3)
    assert [(d.cleared, d.signal.at) for d in spike] == [(False, 302.0)]  # no new warm-up
    fresh = MetricPipeline(DetectionSettings())
    assert fresh.process(metric_batch([400.0] * 5, start=300)) == []  # would be warming up


def test_pipeline__a_restored_alarm_keeps_being_re_sent():
    from agents.kafka.detector_store import DetectorStore

    table = FakeTable()
    first = MetricPipeline(DetectionSettings(), refresh_s=10.0, store=DetectorStore(table))
    rng = np.random.default_rng(5)
    first.process(metric_batch([*rng.normal(50, 2, 300).tolist(), *[400.0] * 5]), partition=0)
    first.checkpoint()
    restarted = MetricPipeline(DetectionSettings(), refresh_s=10.0, store=DetectorStore(table))
    (refresh,) = restarted.process(metric_batch([400.0] * 2, start=305), partition=0)
    assert (refresh.refresh, refresh.cleared) == (True, False)


def test_detector_store__a_corrupt_checkpoint_means_a_fresh_detector():
    from agents.kafka.detector_store import DetectorStore

    table = FakeTable()
    table.data[b"latency_ms"] = b"not a pickle"
    assert DetectorStore(table).load("latency_ms") is None


def test_detector_store__state_over_the_size_limit_is_not_kept(caplog):
    from agents.kafka.detector_store import DetectorStore

    table = FakeTable()
    store = DetectorStore(table, max_bytes=100)
    noisy = np.random.default_rng(1).normal(size=1000).tolist()  # incompressible
    assert store.save({"big": noisy, "small": [1.0]}, {"big": 0, "small": 0}) == 1
    assert list(table.data) == [b"small"] and "over the 100-byte checkpoint limit" in caplog.text
    assert store.load("small") == [1.0]


# --- routing by metric name to the metric detectors ---


def named_events(name: str, values, times=None) -> list[MetricEvent]:
    times = range(len(values)) if times is None else times
    return [
        MetricEvent(timestamp=float(t), name=name, value=float(v), labels={"service": "a"})
        for t, v in zip(times, values, strict=True)
    ]


@pytest.mark.parametrize(
    ("name", "normal", "spike", "detector", "kind"),
    [
        (
            "errors_total",
            lambda r: r.poisson(0.5, 300),
            [9, 12, 10, 11],
            "CountSpike",
            "error_spike",
        ),
        (
            "http_error_ratio",
            lambda r: r.binomial(1000, 0.01, 300) / 1000,
            [0.05, 0.06, 0.05, 0.06],
            "ErrorRatio",
            "error_spike",
        ),
    ],
)
def test_pipeline__error_series_get_count_and_ratio_detectors(name, normal, spike, detector, kind):
    pipeline = MetricPipeline(DetectionSettings())
    values = [*normal(np.random.default_rng(3)), *spike]
    found = pipeline.process(named_events(name, values))
    assert [(d.kind, d.signal.detector, d.cleared, d.signal.at) for d in found[:1]] == [
        (kind, detector, False, 302.0)
    ]


def test_pipeline__raw_latency_samples_get_tail_latency_with_the_window_quantile():
    rng = np.random.default_rng(6)
    samples = rng.lognormal(np.log(40), 0.3, 6000)
    samples[5000:][rng.random(1000) < 0.05] *= 8
    pipeline = MetricPipeline(DetectionSettings(), refresh_s=100.0)
    found = []
    for start in range(0, samples.size, 250):
        batch = named_events("request_latency_ms", samples[start : start + 250])
        for i, event in enumerate(batch):
            batch[i] = event.model_copy(update={"timestamp": float(start + i)})
        found += pipeline.process(batch)
    assert found and {d.kind for d in found} == {"tail_latency"}
    opened = found[0]
    assert 5000 <= opened.signal.at < 5500
    assert opened.signal.observed > 2.5 * opened.signal.baseline  # p99s, not one sample
    refreshes = [d for d in found if d.refresh]
    assert refreshes and all(d.signal.observed > 2 * opened.signal.baseline for d in refreshes)


def test_pipeline__seasonal_series_get_event_times():
    settings = DetectionSettings(seasonal_names=["cpu_utilization"])
    rng = np.random.default_rng(10)
    times = np.arange(0, 6 * 86400, 300.0)
    cpu = np.where(times // 3600 % 24 == 2, 85.0, 30.0) + rng.normal(0, 2, times.size)
    events = named_events("cpu_utilization", cpu, times)
    found = MetricPipeline(settings).process(events)
    opened = [d for d in found if not d.cleared and not d.refresh]
    assert [d.signal.at // 86400 for d in opened] == [0, 1]  # the nightly job, then learnt
    assert {d.kind for d in opened} == {"metric_anomaly"}
    assert {d.signal.detector for d in opened} == {"SeasonalBaseline"}
    # Without the opt-in the same series gets the default detector.
    default = MetricPipeline(DetectionSettings())
    default.process(events[:10])
    assert [type(d) for d in default.detectors.values()] == [MetricEnsemble]


def test_settings__a_metric_name_is_routed_once():
    with pytest.raises(ValueError, match="'error_rate' is in both count_names and ratio_names"):
        DetectionSettings(count_names=["error_rate"])

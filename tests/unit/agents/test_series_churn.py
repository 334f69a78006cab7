"""Series churn: memory stays bounded, new series are always watched, returning ones resume."""

from __future__ import annotations

import numpy as np

from agents.kafka.detector_store import DetectorStore
from agents.kafka.state_ttl import tombstone
from agents.pipelines.events import MetricEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.settings import DetectionSettings


class Table:
    """What DetectorStore and the tombstones use of a Faust table: its data and changelog."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent: list[tuple[int, bytes, bytes | None]] = []

    def send_changelog(self, partition: int, key: bytes, value: bytes | None, **_: object) -> None:
        self.sent.append((partition, key, value))


def sample(t: float, value: float, pod: str, name: str = "latency_ms") -> MetricEvent:
    return MetricEvent(timestamp=t, name=name, value=value, labels={"pod": pod})


def test_a_series_first_seen_after_100_000_others_gets_a_detector_and_alarms():
    """Pipeline level, with the real LatencySpike (a broker run would take minutes)."""
    pipeline = MetricPipeline(DetectionSettings(max_series=1_000))
    rng = np.random.default_rng(1)
    for start in range(0, 100_000, 5_000):  # 100,000 pods, a sample each, then gone
        pipeline.process(
            [
                MetricEvent.model_construct(  # valid by construction: skip the contract's cost
                    timestamp=float(i // 10), name="latency_ms", value=50.0, labels={"pod": f"p{i}"}
                )
                for i in range(start, start + 5_000)
            ]
        )
    assert len(pipeline.detectors) <= 1_000
    late = [
        sample(30_000.0 + i, float(v), "pod-late") for i, v in enumerate(rng.normal(50, 2, 300))
    ]
    assert pipeline.process(late) == []
    spike = [sample(30_300.0 + i, 400.0, "pod-late") for i in range(5)]
    (raised,) = pipeline.process(spike)
    assert (raised.series, raised.kind, raised.cleared) == (
        "latency_ms{pod=pod-late}",
        "latency_spike",
        False,
    )


def test_an_idle_series_is_released_and_resumes_its_baseline_when_it_returns():
    table = Table()
    settings = DetectionSettings(idle_ttl_s=600.0, state_ttl_s=3_600.0)
    pipeline = MetricPipeline(settings, store=DetectorStore(table))
    rng = np.random.default_rng(2)
    learnt = [sample(float(i), float(v), "api-1") for i, v in enumerate(rng.normal(50, 2, 300))]
    pipeline.process(learnt, partition=2)
    before = pipeline.detectors["latency_ms{pod=api-1}"]
    # Other pods keep the clock moving; api-1 says nothing for longer than the TTL.
    for t in range(300, 1_200, 10):
        pipeline.process([sample(float(t), 50.0, f"other-{t}")], partition=2)
    assert "latency_ms{pod=api-1}" not in pipeline.detectors
    assert pipeline.take_evicted()["idle"] >= 1
    assert (2, b"latency_ms{pod=api-1}") in [(p, k) for p, k, _ in table.sent]  # checkpointed

    spike = [sample(1_200.0 + i, 400.0, "api-1") for i in range(5)]
    (raised,) = pipeline.process(spike, partition=2)  # no warm-up: the baseline came back
    assert raised.signal.at == 1_202.0 and not raised.cleared
    resumed = pipeline.detectors["latency_ms{pod=api-1}"]
    assert resumed is not before and raised.signal.baseline == np_approx(50.0, 1.0)


def test_a_released_series_that_never_returns_is_tombstoned_after_the_state_ttl():
    table = Table()
    settings = DetectionSettings(idle_ttl_s=60.0, state_ttl_s=600.0)
    pipeline = MetricPipeline(settings, store=DetectorStore(table))
    pipeline.process([sample(0.0, 50.0, "gone")], partition=1)
    pipeline.process([sample(100.0, 50.0, "other")], partition=1)
    assert b"latency_ms{pod=gone}" in table.data and pipeline.take_expired() == []
    pipeline.process([sample(800.0, 50.0, "other")], partition=1)
    expired = pipeline.take_expired()
    assert expired == [("latency_ms{pod=gone}", 1)]
    assert tombstone(table, expired) == 1
    assert b"latency_ms{pod=gone}" not in table.data
    assert table.sent[-1] == (1, b"latency_ms{pod=gone}", None)


def np_approx(value: float, tol: float) -> object:
    import pytest

    return pytest.approx(value, abs=tol)


def test_under_pod_churn_the_series_key_cache_stays_near_the_live_series():
    # Released pods' label sets must not pile up in the cache (RSS under churn).
    settings = DetectionSettings(idle_ttl_s=60.0, state_ttl_s=600.0)
    pipeline = MetricPipeline(settings, store=DetectorStore(Table()))
    for minute in range(20):  # 1,000 new pods a minute, each seen for one minute
        pipeline.process(
            [sample(minute * 60.0 + i * 0.06, 50.0, f"pod-{minute}-{i}") for i in range(1_000)]
        )
    live = len(pipeline.detectors)
    assert live <= 3_000
    assert len(pipeline._series_keys) <= 2 * live + 1_024 < 20_000

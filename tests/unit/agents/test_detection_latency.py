"""fireline_detection_to_incident_seconds: event time of the raising sample → incident publish."""

from __future__ import annotations

import io
import time

from agents.pipelines.events import MetricEvent
from fireline.detections import DetectionInput
from tests.unit.agents.test_runtime_roots import runtime


def _histogram(worker, sample: str) -> float:
    value = worker.metrics.registry.get_sample_value(sample)
    return 0.0 if value is None else value


async def test_an_opened_incident_observes_its_latency_from_the_raising_samples_event_time():
    worker = runtime(io.StringIO())
    pipeline = worker.pipeline
    now = time.time()
    warm = [
        MetricEvent(
            timestamp=now - 400 + i,
            name="latency_ms",
            value=50.0 + i % 3,
            labels={"service": "api"},
        )
        for i in range(300)
    ]
    spike = [
        MetricEvent(
            timestamp=now - 2.0 + 0.5 * i, name="latency_ms", value=400.0, labels={"service": "api"}
        )
        for i in range(3)
    ]
    assert pipeline.process(warm) == []
    (detection,) = pipeline.process(spike)
    value = DetectionInput(detection=detection).model_dump_json().encode()
    await worker.on_incident_input(detection.subject_key.encode(), value, 0)
    name = "fireline_detection_to_incident_seconds"
    assert _histogram(worker, f"{name}_count") == 1
    observed = _histogram(worker, f"{name}_sum")
    assert 1.0 <= observed < 60.0  # the raising sample was ~1 s old when published
    # A tick opens nothing: nothing more is observed.
    await worker.on_incident_input(None, b'{"type": "tick"}', 0)
    assert _histogram(worker, f"{name}_count") == 1

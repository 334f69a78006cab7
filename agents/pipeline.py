"""The metric hot path: a validated micro-batch in, detections out. No Kafka here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from agents.events import MetricEvent
from agents.incidents import Detection
from agents.settings import Detection as DetectionSettings
from detectors import LatencySpike
from playbooks.incident import Signal

LATENCY_SPIKE = "latency_spike"


def metric_detector(settings: DetectionSettings) -> LatencySpike:
    """The detector for one metric series; `fireline replay` builds the same one."""
    return LatencySpike(
        window=settings.window,
        threshold=settings.threshold,
        min_ratio=settings.min_ratio,
        min_delta=settings.min_delta,
        consecutive=settings.consecutive,
        warmup=settings.warmup,
    )


class MetricPipeline:
    """Routes metric samples to one latency detector per series, batch by batch."""

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self._latency_names = frozenset(settings.metric_names)
        self.detectors: dict[str, LatencySpike] = {}
        self.unwatched = 0  # samples of series beyond max_series, since the last read
        # (name, labels as sent) -> canonical series key; sorting the labels of every
        # event would cost more than the detection itself.
        self._series_keys: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _detector(self, series: str) -> LatencySpike | None:
        detector = self.detectors.get(series)
        if detector is None:
            if len(self.detectors) >= self.settings.max_series:
                return None  # a label with unbounded values must not exhaust memory
            detector = metric_detector(self.settings)
            self.detectors[series] = detector
        return detector

    def process(self, events: Sequence[MetricEvent]) -> list[Detection]:
        """Feed a batch (in arrival order) and return the alarms that rose or cleared."""
        by_series: dict[str, list[MetricEvent]] = defaultdict(list)
        keys = self._series_keys
        for event in events:
            if event.name in self._latency_names:
                raw_key = (event.name, tuple(event.labels.items()))
                series = keys.get(raw_key)
                if series is None:
                    series = event.series_key()
                    if len(keys) < 2 * self.settings.max_series:
                        keys[raw_key] = series
                by_series[series].append(event)
        detections = []
        for series, samples in by_series.items():
            detector = self._detector(series)
            if detector is None:
                self.unwatched += len(samples)
                continue
            detector.update([e.value for e in samples])
            for change in detector.changes:
                # Time and labels of the sample where the alarm changed, so the
                # incident (and its id) does not depend on how events were batched.
                sample = samples[change.index]
                signal = Signal(
                    detector=type(detector).__name__,
                    series=series,
                    observed=change.observed,
                    baseline=change.baseline,
                    score=change.score,
                    at=sample.timestamp,
                )
                detections.append(
                    Detection(
                        LATENCY_SPIKE,
                        series,
                        dict(sample.labels),
                        signal,
                        cleared=not change.raised,
                        adapted=change.adapted,
                    )
                )
        return detections

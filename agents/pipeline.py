"""The metric hot path: a validated micro-batch in, detections out. No Kafka here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from agents.events import MetricEvent
from agents.incidents import Detection
from agents.settings import Detection as DetectionSettings
from detectors import Detector, LatencySpike, MetricEnsemble
from playbooks.incident import Signal

LATENCY_SPIKE = "latency_spike"
METRIC_ANOMALY = "metric_anomaly"


def metric_detector(settings: DetectionSettings) -> MetricEnsemble:
    """The default detector for a metric series; `fireline replay` builds the same one."""
    ensemble = settings.ensemble
    return MetricEnsemble(
        threshold=ensemble.threshold,
        rest=ensemble.rest,
        window=ensemble.window,
        min_spread=ensemble.min_spread,
        grids=ensemble.grids,
        order=ensemble.order,
        max_contexts=ensemble.max_contexts,
        margin=ensemble.margin,
        warmup=ensemble.warmup,
        consecutive=ensemble.consecutive,
        adapt_after=ensemble.adapt_after,
    )


def latency_detector(settings: DetectionSettings) -> LatencySpike:
    """The detector for a series named in ``detection.metric_names``."""
    return LatencySpike(
        window=settings.window,
        threshold=settings.threshold,
        min_ratio=settings.min_ratio,
        min_delta=settings.min_delta,
        consecutive=settings.consecutive,
        warmup=settings.warmup,
    )


class MetricPipeline:
    """Routes metric samples to one detector per series, batch by batch.

    Latency series (``detection.metric_names``) get a LatencySpike (incident kind
    ``latency_spike``); every other series, unless ``watch_other_metrics`` is off,
    gets the default MetricEnsemble (kind ``metric_anomaly``).
    """

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self._latency_names = frozenset(settings.metric_names)
        self._watch_others = settings.watch_other_metrics
        self.detectors: dict[str, Detector] = {}
        self.unwatched = 0  # samples of series beyond max_series, since the last read
        # (name, labels as sent) -> canonical series key; sorting the labels of every
        # event would cost more than the detection itself.
        self._series_keys: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _detector(self, series: str, latency: bool) -> Detector | None:
        detector = self.detectors.get(series)
        if detector is None:
            if len(self.detectors) >= self.settings.max_series:
                return None  # a label with unbounded values must not exhaust memory
            detector = (
                latency_detector(self.settings) if latency else metric_detector(self.settings)
            )
            self.detectors[series] = detector
        return detector

    def process(self, events: Sequence[MetricEvent]) -> list[Detection]:
        """Feed a batch (in arrival order) and return the alarms that rose or cleared."""
        by_series: dict[str, list[MetricEvent]] = defaultdict(list)
        keys = self._series_keys
        for event in events:
            if self._watch_others or event.name in self._latency_names:
                raw_key = (event.name, tuple(event.labels.items()))
                series = keys.get(raw_key)
                if series is None:
                    series = event.series_key()
                    if len(keys) < 2 * self.settings.max_series:
                        keys[raw_key] = series
                by_series[series].append(event)
        detections = []
        for series, samples in by_series.items():
            detector = self._detector(series, samples[0].name in self._latency_names)
            if detector is None:
                self.unwatched += len(samples)
                continue
            detector.update([e.value for e in samples])
            kind = LATENCY_SPIKE if isinstance(detector, LatencySpike) else METRIC_ANOMALY
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
                        kind,
                        series,
                        dict(sample.labels),
                        signal,
                        cleared=not change.raised,
                        adapted=change.adapted,
                    )
                )
        return detections

"""The metric hot path: a validated micro-batch in, detections out. No Kafka here."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

from agents.kafka.detector_store import DetectorStore
from agents.pipelines.events import MetricEvent
from agents.settings import DetectionSettings, DetectorRoute
from detectors import (
    CountSpike,
    ErrorRatio,
    LatencySpike,
    MetricDetector,
    MetricEnsemble,
    SeasonalBaseline,
    TailLatency,
)
from fireline import promql
from fireline.detections import Detection
from fireline.incident import EvidencePoint, Signal

LATENCY_SPIKE = "latency_spike"
METRIC_ANOMALY = "metric_anomaly"
ERROR_SPIKE = "error_spike"
TAIL_LATENCY = "tail_latency"

# Incident kind by detector: counts and ratios are both "errors went up"; a seasonal
# anomaly is a metric anomaly judged against its hour (the detector names which).
_KINDS: dict[type[MetricDetector], str] = {
    LatencySpike: LATENCY_SPIKE,
    CountSpike: ERROR_SPIKE,
    ErrorRatio: ERROR_SPIKE,
    TailLatency: TAIL_LATENCY,
    SeasonalBaseline: METRIC_ANOMALY,
    MetricEnsemble: METRIC_ANOMALY,
}


class MetricPipeline:
    """Routes metric samples to one detector per series, batch by batch.

    By metric name: latency series (``detection.metric_names``) get a LatencySpike
    (incident kind ``latency_spike``), error counts (``count_names``) a CountSpike
    and error ratios (``ratio_names``) an ErrorRatio (both ``error_spike``), raw
    latency samples (``tail_latency_names``) a TailLatency (``tail_latency``),
    ``seasonal_names`` a SeasonalBaseline; every other series, unless
    ``watch_other_metrics`` is off, the default MetricEnsemble (these two
    ``metric_anomaly``). Each detector is built from its section of the
    settings (:meth:`DetectionSettings.routes`), every series of a kind sharing
    one parameter instance. Detectors get the samples' event times.
    """

    def __init__(
        self,
        settings: DetectionSettings,
        refresh_s: float = 30.0,
        evidence_points: int = 120,
        store: DetectorStore | None = None,
    ) -> None:
        """``store``: where detectors are checkpointed, when the worker has a table."""
        self.settings = settings
        self.refresh_s = refresh_s
        self.evidence_points = evidence_points
        # series in alarm → (event time last reported, baseline), to re-send every refresh_s
        self._firing: dict[str, tuple[float, float]] = {}
        self._recent: dict[str, deque[tuple[float, float]]] = {}  # evidence for charts
        routes = settings.routes()
        self._routes: dict[str, DetectorRoute] = {
            name: route for route in routes for name in route.names
        }
        self._default = routes[-1]  # every other metric
        self._named = frozenset(self._routes)
        self._watch_others = settings.watch_other_metrics
        self.detectors: dict[str, MetricDetector] = {}
        self.store = store
        self.dirty: dict[str, int] = {}  # series learnt from since the last checkpoint → partition
        self.unwatched = 0  # samples of series beyond max_series, since the last read
        # (name, labels as sent) -> canonical series key; sorting the labels of every
        # event would cost more than the detection itself.
        self._series_keys: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _detector(self, series: str, name: str) -> MetricDetector | None:
        detector = self.detectors.get(series)
        if detector is None:
            if len(self.detectors) >= self.settings.max_series:
                return None  # a label with unbounded values must not exhaust memory
            state = self.store.load(series) if self.store is not None else None
            restored = state if isinstance(state, MetricDetector) else None
            if restored is not None and restored.alarm:
                # Still in alarm when saved: keep re-sending it, or its incident would expire.
                self._firing[series] = (float("-inf"), 0.0)
            detector = restored or self._routes.get(name, self._default).build()
            self.detectors[series] = detector
        return detector

    def take_unwatched(self) -> int:
        """The samples of series beyond max_series since the last call (the count restarts)."""
        taken, self.unwatched = self.unwatched, 0
        return taken

    def checkpoint(self) -> int:
        """Save the detectors that learnt since the last checkpoint; return how many."""
        if self.store is None or not self.dirty:
            return 0
        saved = self.store.save(self.detectors, self.dirty)
        self.dirty = {}
        return saved

    def forget(self) -> None:
        """Drop every in-memory detector (after a rebalance they reload from the table)."""
        self.detectors.clear()
        self.dirty.clear()
        self._firing.clear()

    def process(self, events: Sequence[MetricEvent], partition: int = -1) -> list[Detection]:
        """Feed a batch (in arrival order) and return the alarms that rose or cleared.

        ``partition`` is where the events came from: the detectors' checkpoints go
        to the same partition of the state table.
        """
        by_series: dict[str, list[MetricEvent]] = defaultdict(list)
        keys = self._series_keys
        for event in events:
            if self._watch_others or event.name in self._named:
                raw_key = (event.name, tuple(event.labels.items()))
                series = keys.get(raw_key)
                if series is None:
                    series = event.series_key()
                    if len(keys) < 2 * self.settings.max_series:
                        keys[raw_key] = series
                by_series[series].append(event)
        detections: list[Detection] = []
        for series, samples in by_series.items():
            detector = self._detector(series, samples[0].name)
            if detector is None:
                self.unwatched += len(samples)
                continue
            detector.update([e.value for e in samples], [e.timestamp for e in samples])
            self.dirty[series] = partition
            recent = self._recent.get(series)
            if recent is None:
                recent = self._recent[series] = deque(maxlen=self.evidence_points)
            for change in detector.changes:
                # Time and labels of the sample where the alarm changed, so the
                # incident (and its id) does not depend on how events were batched.
                sample = samples[change.index]
                if change.raised:
                    self._firing[series] = (sample.timestamp, change.baseline)
                else:
                    self._firing.pop(series, None)
                evidence = (
                    self._evidence(recent, samples[: change.index + 1]) if change.raised else []
                )
                detections.append(
                    self._detection(
                        detector,
                        series,
                        sample,
                        change.observed,
                        change.baseline,
                        change.score,
                        cleared=not change.raised,
                        adapted=change.adapted,
                        evidence=evidence,
                    )
                )
            recent.extend((e.timestamp, e.value) for e in samples)
            detections.extend(self._refreshes(detector, series, samples))
        return detections

    def _evidence(
        self, recent: deque[tuple[float, float]], upto: Sequence[MetricEvent]
    ) -> list[EvidencePoint]:
        """The last points before the batch plus the batch's up to the detection."""
        points = [*recent, *((e.timestamp, e.value) for e in upto)][-self.evidence_points :]
        return [EvidencePoint(at=at, value=value) for at, value in points]

    def _refreshes(
        self, detector: MetricDetector, series: str, samples: Sequence[MetricEvent]
    ) -> list[Detection]:
        """Re-send an alarm that is still on, so the incident knows its signal is alive."""
        firing = self._firing.get(series)
        last = samples[-1]
        if firing is None or not detector.alarm or last.timestamp - firing[0] < self.refresh_s:
            return []
        baseline = firing[1]
        self._firing[series] = (last.timestamp, baseline)
        # A TailLatency alarm is about its window's quantile, not the latest sample.
        observed = detector.last if isinstance(detector, TailLatency) else last.value
        return [
            self._detection(
                detector, series, last, observed, baseline, detector.score, refresh=True
            )
        ]

    @staticmethod
    def _detection(
        detector: MetricDetector,
        series: str,
        sample: MetricEvent,
        observed: float,
        baseline: float,
        score: float,
        **flags: object,
    ) -> Detection:
        signal = Signal(
            detector=type(detector).__name__,
            series=series,
            observed=observed,
            baseline=baseline,
            score=score,
            at=sample.timestamp,
            selector=promql.selector(sample.name, sample.labels),  # to paste into Prometheus
        )
        kind = _KINDS.get(type(detector), METRIC_ANOMALY)
        return Detection(
            kind=kind, series=series, labels=dict(sample.labels), signal=signal, **flags
        )

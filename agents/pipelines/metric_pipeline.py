"""The metric hot path: a validated micro-batch in, detections out. No Kafka here."""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from collections.abc import Sequence

from agents.kafka.detector_store import DetectorStore
from agents.pipelines.fast_events import AnyMetricEvent
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


_SERIES_KEYS_SLACK = 1024  # cached keys beyond twice the live series

# A series fed in a batch: its key, samples, detector, and the values and times fed.
_Fed = tuple[str, list[AnyMetricEvent], MetricDetector, list[float], list[float]]


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

    Memory stays bounded under series churn (pod names come and go): a series
    with no sample for ``detection.idle_ttl_s`` of event time is released (its
    detector checkpointed to the store first, and reloaded if the series
    returns), and beyond ``detection.max_series`` live series the least recently
    seen is released. Without a store nothing is released for idleness (the
    baseline would be lost), only for the memory bound. A released series whose
    state is not reloaded for ``detection.state_ttl_s`` is handed out by
    :meth:`take_expired` to be tombstoned in the state table.
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
        # Evidence for charts: a series' latest event times and values (two deques, no
        # pair per sample).
        self._recent: dict[str, tuple[deque[float], deque[float]]] = {}
        routes = settings.routes()
        self._routes: dict[str, DetectorRoute] = {
            name: route for route in routes for name in route.names
        }
        self._default = routes[-1]  # every other metric
        self._named = frozenset(self._routes)
        self._watch_others = settings.watch_other_metrics
        # live series, least recently seen first
        self.detectors: OrderedDict[str, MetricDetector] = OrderedDict()
        self.store = store
        self.dirty: dict[str, int] = {}  # series learnt from since the last checkpoint → partition
        self._last_seen: dict[str, float] = {}  # live series → event time of its last sample
        self._partition: dict[str, int] = {}  # live series → where its state is checkpointed
        self._released: OrderedDict[str, tuple[float, int]] = OrderedDict()  # → (when, partition)
        self._now = float("-inf")  # the newest event time seen
        self.evicted = {"idle": 0, "memory": 0}  # series released, by reason, since the last read
        # (name, labels as sent) -> canonical series key; sorting the labels of every
        # event would cost more than the detection itself. Started over when twice the
        # live series: under pod churn the label sets of released series would pile up.
        self._series_keys: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _new_detector(self, series: str, name: str) -> MetricDetector:
        """The detector of a series not in memory: reloaded from the store, or a new one."""
        state = self.store.load(series) if self.store is not None else None
        restored = state if isinstance(state, MetricDetector) else None
        if restored is not None and restored.alarm:
            # Still in alarm when saved: keep re-sending it, or its incident would expire.
            self._firing[series] = (float("-inf"), 0.0)
        detector = restored or self._routes.get(name, self._default).build()
        self.detectors[series] = detector
        self._released.pop(series, None)
        return detector

    def take_evicted(self) -> dict[str, int]:
        """Series released since the last call, by reason (``idle``, ``memory``)."""
        taken, self.evicted = self.evicted, {"idle": 0, "memory": 0}
        return taken

    def take_expired(self) -> list[tuple[str, int]]:
        """Released series (key, partition) whose state outlived ``state_ttl_s``: tombstone them."""
        horizon = self._now - self.settings.state_ttl_s
        expired: list[tuple[str, int]] = []
        while self._released:
            series, (released_at, partition) = next(iter(self._released.items()))
            if released_at >= horizon:
                break
            del self._released[series]
            expired.append((series, partition))
        return expired

    def _evict(self) -> None:
        """Release idle series (when they can be reloaded) and any beyond the memory bound."""
        limit = self.settings.max_series
        idle_before = self._now - self.settings.idle_ttl_s if self.store is not None else None
        while self.detectors:
            series = next(iter(self.detectors))
            if len(self.detectors) > limit:
                self._release(series, "memory")
            elif idle_before is not None and self._last_seen.get(series, self._now) < idle_before:
                self._release(series, "idle")
            else:
                break

    def _release(self, series: str, reason: str) -> None:
        detector = self.detectors.pop(series)
        partition = self._partition.pop(series, -1)
        if self.store is not None and self.dirty.pop(series, None) is not None:
            self.store.save({series: detector}, {series: partition})
        if self.store is not None:
            self._released[series] = (self._now, partition)
        self._last_seen.pop(series, None)
        self._recent.pop(series, None)
        self._firing.pop(series, None)  # reloaded with the detector if it is still in alarm
        self.evicted[reason] += 1

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
        self._last_seen.clear()
        self._partition.clear()
        self._recent.clear()
        # Not tombstoned by anyone now: those checkpoints stay (and reload if the series returns).
        self._released.clear()

    def process(self, events: Sequence[AnyMetricEvent], partition: int = -1) -> list[Detection]:
        """Feed a batch (in arrival order) and return the alarms that rose or cleared.

        ``partition`` is where the events came from: the detectors' checkpoints go
        to the same partition of the state table.
        """
        detections: list[Detection] = []
        dirty, partitions, last_seen, recents, firing = (
            self.dirty,
            self._partition,
            self._last_seen,
            self._recent,
            self._firing,
        )
        now = self._now
        fed = self._feed(self._by_series(events))
        for series, samples, detector, values, times in fed:
            dirty[series] = partitions[series] = partition
            last = last_seen[series] = times[-1]
            now = max(now, last)
            recent = recents.get(series)
            if recent is None:
                recent = recents[series] = (
                    deque(maxlen=self.evidence_points),
                    deque(maxlen=self.evidence_points),
                )
            if detector.changes:
                detections += self._changes(detector, series, samples, recent)
            recent[0].extend(times)
            recent[1].extend(values)
            if series in firing:
                detections += self._refreshes(detector, series, samples)
        self._now = now
        self._evict()
        return detections

    def _feed(self, by_series: dict[str, list[AnyMetricEvent]]) -> list[_Fed]:
        """Each series' samples fed to its detector; the series in order, with what was fed.

        The detectors of one class learn together (``update_many``: the default
        detector's context models in one NumPy step per point, over all series).
        """
        detectors = self.detectors
        fed: list[_Fed] = []
        by_class: dict[type[MetricDetector], list[_Fed]] = defaultdict(list)
        for series, samples in by_series.items():
            detector = detectors.get(series)
            if detector is None:
                detector = self._new_detector(series, samples[0].name)
            else:
                detectors.move_to_end(series)  # least recently seen first
            values = [e.value for e in samples]
            times = [e.timestamp for e in samples]
            fed.append((series, samples, detector, values, times))
            by_class[type(detector)].append(fed[-1])
        for kind, group in by_class.items():
            kind.update_many(
                [item[2] for item in group],
                [item[3] for item in group],
                [item[4] for item in group],
            )
        return fed

    def _by_series(self, events: Sequence[AnyMetricEvent]) -> dict[str, list[AnyMetricEvent]]:
        """The watched events grouped by series, in arrival order."""
        by_series: dict[str, list[AnyMetricEvent]] = defaultdict(list)
        keys = self._series_keys
        watch_others, named = self._watch_others, self._named
        for event in events:
            if watch_others or event.name in named:
                raw_key = (event.name, tuple(event.labels.items()))
                series = keys.get(raw_key)
                if series is None:
                    series = event.series_key()
                    if len(keys) >= 2 * len(self.detectors) + _SERIES_KEYS_SLACK:
                        keys.clear()  # churned label sets: start the cache over
                    keys[raw_key] = series
                by_series[series].append(event)
        return by_series

    def _changes(
        self,
        detector: MetricDetector,
        series: str,
        samples: Sequence[AnyMetricEvent],
        recent: tuple[deque[float], deque[float]],
    ) -> list[Detection]:
        """The detections of the alarm changes of the batch just fed (``recent``: before it)."""
        detections = []
        for change in detector.changes:
            # Time and labels of the sample where the alarm changed, so the
            # incident (and its id) does not depend on how events were batched.
            sample = samples[change.index]
            if change.raised:
                self._firing[series] = (sample.timestamp, change.baseline)
            else:
                self._firing.pop(series, None)
            evidence = self._evidence(recent, samples[: change.index + 1]) if change.raised else []
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
        return detections

    def _evidence(
        self, recent: tuple[deque[float], deque[float]], upto: Sequence[AnyMetricEvent]
    ) -> list[EvidencePoint]:
        """The last points before the batch plus the batch's up to the detection."""
        before = zip(*recent, strict=True)
        points = [*before, *((e.timestamp, e.value) for e in upto)][-self.evidence_points :]
        return [EvidencePoint(at=at, value=value) for at, value in points]

    def _refreshes(
        self, detector: MetricDetector, series: str, samples: Sequence[AnyMetricEvent]
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
        sample: AnyMetricEvent,
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

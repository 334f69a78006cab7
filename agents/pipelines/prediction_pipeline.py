"""Prediction logs and labels in, detections and model-version changes out. No Kafka here.

Wraps the detectors' :class:`~detectors.monitor.prediction_log.PredictionLogMonitor`
(one :class:`~detectors.monitor.model_monitor.ModelMonitor` per model version) and turns
its findings into the incident manager's inputs. An alarm that is still on is
re-sent every ``refresh_s`` of event time, as the metric pipeline does, so an
incident knows its signal is alive; a one-shot finding (a new field, the domain
classifier) is never re-sent and expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor

from agents.kafka.detector_store import DetectorStore
from agents.kafka.label_join_store import LabelJoinStore
from agents.pipelines.fast_events import AnyLabelEvent, AnyPredictionEvent
from detectors.monitor import records
from detectors.monitor.comparison import VersionComparison
from detectors.monitor.label_join import LabelJoin
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.versions import ModelVersions
from fireline import promql
from fireline.detections import ComparedFigureModel, Detection, VersionComparisonModel
from fireline.incident import Change, Signal

log = logging.getLogger(__name__)

FiringKey = tuple[str, str, str, str]  # model, version, kind, feature or ""


class PredictionPipeline:
    """Feeds the monitor in arrival order and translates what it finds."""

    def __init__(
        self,
        config: MonitorConfig | None = None,
        refresh_s: float = 30.0,
        store: DetectorStore | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``store``: where monitors are checkpointed, when the worker has a table.

        ``executor``: where the domain classifier fits (the worker's is
        :func:`~detectors.drift.domain_classifier.classifier_process`); None fits
        inline, on the hot path.
        """
        self.store = store
        self.labels = LabelJoinStore(store) if store is not None else None
        self.monitor = PredictionLogMonitor(
            config,
            executor=executor,
            restore=self._restore,
            restore_join=self._restore_join,
            restore_versions=self._restore_versions,
        )
        self.refresh_s = refresh_s
        self.dirty: dict[str, int] = {}  # monitor key → partition, since the last checkpoint
        # model → partition, since the last checkpoint: its label join and version comparison
        self.dirty_models: dict[str, int] = {}
        self._firing: dict[FiringKey, tuple[float, records.Finding]] = {}

    def process(
        self, events: Sequence[AnyPredictionEvent | AnyLabelEvent], partition: int = -1
    ) -> tuple[list[Detection], list[Change]]:
        """Detections (raised, cleared, re-sent) and version changes of one micro-batch.

        ``partition`` is where the events came from: the monitors' checkpoints go
        to the same partition of the state table.
        """
        found = self.monitor.process([e.to_record() for e in events])
        touched = {e.model for e in events}
        for monitor in self.monitor.monitors():
            if monitor.model in touched:
                self.dirty[_key(monitor.model, monitor.version)] = partition
        for model in touched:
            self.dirty_models[model] = partition
        detections: list[Detection] = []
        changes: list[Change] = []
        for finding in found:
            if finding.kind == records.MODEL_VERSION_CHANGE:
                changes.append(_change(finding))
                continue
            if finding.kind == records.MODEL_VERSION_ACCEPTED:
                # Not a production change (it would become an incident's likely cause).
                log.info("%s", finding.message)
                continue
            key = (finding.model, finding.model_version, finding.kind, finding.feature or "")
            if finding.cleared:
                self._firing.pop(key, None)
            elif finding.kind not in _ONE_SHOT:
                self._firing[key] = (finding.timestamp, finding)
            detections.append(_detection(finding))
        if events:
            detections += self._refreshes(max(e.timestamp for e in events))
        return detections, changes

    def accept(self, model: str, version: str, partition: int = -1) -> list[Detection]:
        """Accept ``version`` of ``model`` as its baseline now (an engineer's call).

        Returns the detections to publish: the clearing of the version's
        ``version_regression`` if it had one (empty when this worker does not
        compare that model's versions). ``partition``: the model's, where the
        comparison's checkpoint goes.
        """
        detections = []
        found = self.monitor.accept(model, version)
        if found and partition >= 0:
            self.dirty_models[model] = partition
        for finding in found:
            if finding.kind == records.MODEL_VERSION_ACCEPTED:
                log.info("%s", finding.message)
                continue
            self._firing.pop(
                (finding.model, finding.model_version, finding.kind, finding.feature or ""), None
            )
            detections.append(_detection(finding))
        return detections

    def performance(self, models: Iterable[str]) -> list[tuple[str, str, str, str, float]]:
        """(model, version, metric, source, value) of these models, for the gauges."""
        return self.monitor.performance(models)

    def checkpoint(self) -> int:
        """Save the monitors and label joins changed since the last checkpoint; return how many."""
        if self.store is None or self.labels is None:
            return 0
        saved = 0
        if self.dirty:
            monitors = {_key(m.model, m.version): m for m in self.monitor.monitors()}
            saved += self.store.save(monitors, self.dirty)
        if self.dirty_models:
            saved += self.labels.save(self.monitor.joins(), self.dirty_models)
            compared = {
                _versions_key(model): versions
                for model in self.dirty_models
                if (versions := self.monitor.versions(model)) is not None
            }
            where = {_versions_key(model): p for model, p in self.dirty_models.items()}
            saved += self.store.save(compared, where)
        self.dirty = {}
        self.dirty_models = {}
        return saved

    def take_label_counts(self) -> dict[tuple[str, str], int]:
        """Labels matched, unmatched and predictions expired unlabelled, since the last call.

        Keyed by (model, outcome); only non-zero counts.
        """
        counts: dict[tuple[str, str], int] = {}
        for model, join in self.monitor.joins().items():
            for outcome, n in zip(LABEL_OUTCOMES, join.take_counts(), strict=True):
                if n:
                    counts[(model, outcome)] = n
        return counts

    def forget(self) -> None:
        """Drop every monitor and label join (after a rebalance they reload from the table)."""
        self.monitor.forget()
        self.dirty.clear()
        self.dirty_models.clear()
        self._firing.clear()

    def _restore(self, model: str, version: str) -> ModelMonitor | None:
        if self.store is None:
            return None
        state = self.store.load(_key(model, version))
        return state if isinstance(state, ModelMonitor) else None

    def _restore_versions(self, model: str) -> ModelVersions | None:
        if self.store is None:
            return None
        state = self.store.load(_versions_key(model))
        return state if isinstance(state, ModelVersions) else None

    def _restore_join(self, model: str) -> LabelJoin | None:
        if self.labels is None:
            return None
        monitor = self.monitor
        return self.labels.load(model, monitor.max_pending, monitor.max_wait_s)

    def _refreshes(self, now: float) -> list[Detection]:
        due = []
        for key, (sent, finding) in self._firing.items():
            if now - sent >= self.refresh_s:
                self._firing[key] = (now, finding)
                due.append(_detection(finding, refresh_at=now))
        return due


_ONE_SHOT = frozenset({records.MULTIVARIATE_DRIFT})
# What became of labels and waiting predictions, in LabelJoin.take_counts order.
LABEL_OUTCOMES = ("matched", "unmatched", "expired")


def _key(model: str, version: str) -> str:
    return f"monitor|{model}|{version}"


def _versions_key(model: str) -> str:
    return f"versions|{model}"


def _detection(finding: records.Finding, refresh_at: float | None = None) -> Detection:
    series = finding.feature or ("prediction" if finding.kind == records.PREDICTION_DRIFT else "")
    series = f"{finding.model}:{series or finding.kind}"
    signal = Signal(
        detector=finding.kind,
        series=series,
        observed=finding.observed if finding.observed is not None else finding.score,
        baseline=finding.baseline if finding.baseline is not None else 0.0,
        score=min(max(finding.score, 0.0), 1.0),
        at=refresh_at if refresh_at is not None else finding.timestamp,
        message=finding.message,
        selector=_selector(finding),
    )
    labels = {"model": finding.model, "model_version": finding.model_version}
    if finding.kind == records.VERSION_REGRESSION and finding.previous_version is not None:
        labels["previous_version"] = finding.previous_version  # what a rollback goes back to
    return Detection(
        kind=finding.kind,
        series=series,
        labels=labels,
        signal=signal,
        cleared=finding.cleared,
        refresh=refresh_at is not None,
        comparison=_comparison(finding.comparison),
    )


def _comparison(comparison: VersionComparison | None) -> VersionComparisonModel | None:
    if comparison is None:
        return None
    return VersionComparisonModel(
        baseline_version=comparison.baseline_version,
        candidate_version=comparison.candidate_version,
        figures=tuple(
            ComparedFigureModel(
                metric=f.metric,
                baseline=f.baseline,
                candidate=f.candidate,
                baseline_events=f.baseline_events,
                candidate_events=f.candidate_events,
                worse=f.worse,
                estimated=f.estimated,
                detail=f.detail,
            )
            for f in comparison.figures
        ),
        mode=comparison.mode,
        accepted=comparison.accepted,
    )


def _selector(finding: records.Finding) -> str:
    """The log's latency is the model's ``latency_ms`` series; drift has no Prometheus series."""
    if finding.kind == records.LATENCY_SPIKE:
        return promql.selector("latency_ms", {"model": finding.model})
    return ""


def _change(finding: records.Finding) -> Change:
    return Change(
        kind="model_version_change",
        model=finding.model,
        version=finding.model_version,
        previous_version=finding.previous_version,
        at=finding.timestamp,
    )

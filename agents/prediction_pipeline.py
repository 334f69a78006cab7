"""Prediction logs and labels in, detections and model-version changes out. No Kafka here.

Wraps the detectors' :class:`~detectors.prediction_log.PredictionLogMonitor`
(one :class:`~detectors.model_monitor.ModelMonitor` per model version) and turns
its findings into the incident manager's inputs. An alarm that is still on is
re-sent every ``refresh_s`` of event time, as the metric pipeline does, so an
incident knows its signal is alive; a one-shot finding (a new field, the domain
classifier) is never re-sent and expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from agents.detections import Detection
from agents.events import LabelEvent, PredictionEvent
from detectors import records
from detectors.prediction_log import PredictionLogMonitor
from playbooks.incident import Change, Signal

FiringKey = tuple[str, str, str, str]  # model, version, kind, feature or ""


class PredictionPipeline:
    """Feeds the monitor in arrival order and translates what it finds."""

    def __init__(self, monitor: PredictionLogMonitor | None = None, refresh_s: float = 30.0):
        # The domain classifier's fits (~0.1 s each) run in a thread of their own:
        # off the hot path, as scikit-learn releases the GIL while it fits.
        self.monitor = monitor or PredictionLogMonitor(
            executor=ThreadPoolExecutor(1, thread_name_prefix="fireline-classifier")
        )
        self.refresh_s = refresh_s
        self._firing: dict[FiringKey, tuple[float, records.Detection]] = {}

    def process(
        self, events: Sequence[PredictionEvent | LabelEvent]
    ) -> tuple[list[Detection], list[Change]]:
        """Detections (raised, cleared, re-sent) and version changes of one micro-batch."""
        found = self.monitor.process([e.to_record() for e in events])
        detections: list[Detection] = []
        changes: list[Change] = []
        for finding in found:
            if finding.kind == records.MODEL_VERSION_CHANGE:
                changes.append(_change(finding))
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

    def _refreshes(self, now: float) -> list[Detection]:
        due = []
        for key, (sent, finding) in self._firing.items():
            if now - sent >= self.refresh_s:
                self._firing[key] = (now, finding)
                due.append(_detection(finding, refresh_at=now))
        return due


_ONE_SHOT = frozenset({records.MULTIVARIATE_DRIFT})


def _detection(finding: records.Detection, refresh_at: float | None = None) -> Detection:
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
    )
    return Detection(
        kind=finding.kind,
        series=series,
        labels={"model": finding.model, "model_version": finding.model_version},
        signal=signal,
        cleared=finding.cleared,
        refresh=refresh_at is not None,
    )


def _change(finding: records.Detection) -> Change:
    return Change(
        kind="model_version_change",
        model=finding.model,
        version=finding.model_version,
        previous_version=finding.previous_version,
        at=finding.timestamp,
    )

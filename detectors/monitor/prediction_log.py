"""PredictionLogMonitor: prediction and label events in, detections out, for many models.

One :class:`~detectors.monitor.model_monitor.ModelMonitor` per (model, model_version),
at most ``max_versions`` per model (the least recently seen is dropped: a
rolled-back version starts over with a fresh warm-up and reference). The first
event of a version a model has not had before is reported as a
``model_version_change`` event (not a detection) when the model had another
version before. Labels are joined to their predictions by ``prediction_id``
(:class:`~detectors.monitor.label_join.LabelJoin`, bounded by count and event time; a
caller that checkpoints them hands them back through ``restore_join``) and
become outcomes: for a numeric score and a 0/1 or boolean label, the prediction
is wrong when ``(score >= 0.5) != label``; for a string prediction, when it
differs from the label. Other pairs (regression, object predictions) are not
scored yet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from itertools import groupby

from detectors.monitor.label_join import LabelJoin, Pending
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import MODEL_VERSION_CHANGE, Finding, Label, Prediction
from fireline.errors import ConfigError


class PredictionLogMonitor:
    """Routes prediction and label events to per-version monitors, in time order."""

    def __init__(
        self,
        config: MonitorConfig | None = None,
        max_versions: int = 3,
        max_pending: int = 100_000,
        max_wait_s: float = 7 * 86_400.0,
        executor: Executor | None = None,
        restore: Callable[[str, str], ModelMonitor | None] | None = None,
        restore_join: Callable[[str], LabelJoin | None] | None = None,
    ) -> None:
        if max_versions < 1:
            raise ConfigError(f"max_versions must be at least 1; got {max_versions}.")
        self.config = config or MonitorConfig()
        self.max_versions = max_versions
        self.max_pending = max_pending
        self.max_wait_s = max_wait_s
        self.executor = executor  # where domain-classifier tests run (None: inline)
        # A checkpointed monitor for (model, version), if the caller keeps them.
        self.restore = restore
        # A checkpointed label join of a model, so labels find predictions made before a restart.
        self.restore_join = restore_join
        self._monitors: dict[str, OrderedDict[str, ModelMonitor]] = {}
        self._joins: dict[str, LabelJoin] = {}

    def process(self, events: Iterable[Prediction | Label]) -> list[Finding]:
        """Feed a micro-batch of events in time order; return what they raised."""
        found: list[Finding] = []
        for is_label, run in groupby(events, key=lambda e: isinstance(e, Label)):
            if is_label:
                found += self._labels([e for e in run if isinstance(e, Label)])
            else:
                predictions = [e for e in run if isinstance(e, Prediction)]
                for (model, version), same in groupby(
                    predictions, key=lambda p: (p.model, p.model_version)
                ):
                    found += self._predictions(model, version, list(same))
        found.sort(key=lambda d: d.timestamp)  # stable: ties keep detector order
        return found

    def monitor(self, model: str, version: str) -> ModelMonitor | None:
        """The monitor of one model version, if it is tracked."""
        return self._monitors.get(model, OrderedDict()).get(version)

    def monitors(self) -> list[ModelMonitor]:
        """Every tracked monitor."""
        return [m for versions in self._monitors.values() for m in versions.values()]

    def forget(self) -> None:
        """Drop every monitor and label join (after a rebalance monitors reload)."""
        self._monitors.clear()
        self._joins.clear()

    def accept(self, model: str, version: str) -> list[Finding]:
        """An engineer accepts ``version`` early: it becomes ``model``'s baseline now.

        Returns the ``model_version_accepted`` record and, if the version had
        regressed, the clearing of its ``version_regression``; nothing when this
        monitor does not compare that version (another worker may own the model).
        """
        return []

    def join(self, model: str) -> LabelJoin | None:
        """The label join of one model, if it has had predictions."""
        return self._joins.get(model)

    def joins(self) -> dict[str, LabelJoin]:
        """Every model's label join, by model."""
        return dict(self._joins)

    def _join(self, model: str, create: bool) -> LabelJoin | None:
        """The model's join: in memory, else checkpointed, else a new one if ``create``."""
        join = self._joins.get(model)
        if join is None and self.restore_join is not None:
            join = self.restore_join(model)
        if join is None and create:
            join = LabelJoin(self.max_pending, self.max_wait_s)
        if join is not None:
            self._joins[model] = join
        return join

    def _resumed(self, model: str, version: str) -> ModelMonitor | None:
        """The version's monitor: in memory, else checkpointed (resumed, not going live)."""
        versions = self._monitors.setdefault(model, OrderedDict())
        monitor = versions.get(version)
        if monitor is None and self.restore is not None:
            monitor = self.restore(model, version)
            if monitor is not None:
                monitor.executor = self.executor
                versions[version] = monitor
                while len(versions) > self.max_versions:
                    versions.popitem(last=False)
        return monitor

    def _predictions(self, model: str, version: str, batch: list[Prediction]) -> list[Finding]:
        versions = self._monitors.setdefault(model, OrderedDict())
        join = self._join(model, create=True)
        assert join is not None  # created when not found
        found: list[Finding] = []
        monitor = self._resumed(model, version)
        if monitor is None:
            if versions:
                previous = next(reversed(versions))
                found.append(
                    Finding(
                        batch[0].timestamp,
                        model,
                        version,
                        MODEL_VERSION_CHANGE,
                        None,
                        0.0,
                        f"model {model}: version {previous} -> {version}; a fresh reference is "
                        f"captured after {self.config.warmup} warm-up events",
                        previous_version=previous,
                    )
                )
            monitor = versions[version] = ModelMonitor(model, version, self.config, self.executor)
            while len(versions) > self.max_versions:
                versions.popitem(last=False)
        versions.move_to_end(version)
        for p in batch:
            join.add(p.prediction_id, Pending(version, _scorable(p.prediction), p.timestamp))
        return found + monitor.observe(batch)

    def _labels(self, labels: Sequence[Label]) -> list[Finding]:
        found: list[Finding] = []
        for (model, version), outcomes in groupby(self._outcomes(labels), key=lambda o: o[:2]):
            monitor = self._resumed(model, version)
            rows = list(outcomes)
            if monitor is not None:
                found += monitor.observe_outcomes([r[2] for r in rows], [r[3] for r in rows])
        return found

    def _outcomes(self, labels: Sequence[Label]) -> list[tuple[str, str, float, float]]:
        rows = []
        for label in labels:
            join = self._join(label.model, create=False)
            pending = join.match(label.prediction_id, label.timestamp) if join else None
            if pending is None:
                continue
            error = outcome_error(pending.prediction, label.label)
            if error is not None:
                rows.append((label.model, pending.model_version, error, label.timestamp))
        return rows


def outcome_error(prediction: float | str | None, label: float | str | bool) -> float | None:
    """1.0 if the prediction was wrong, 0.0 if right, None if this pair is not scored."""
    if isinstance(prediction, str):
        return float(
            prediction != str(label).lower()
            if isinstance(label, bool)
            else prediction != str(label)
        )
    if prediction is None or isinstance(label, str):
        return None
    if isinstance(label, bool) or label in (0, 1):
        return float((prediction >= 0.5) != bool(label))
    return None


def _scorable(prediction: object) -> float | str | None:
    if isinstance(prediction, bool):
        return str(prediction).lower()
    if isinstance(prediction, int | float | str):
        return prediction
    return None

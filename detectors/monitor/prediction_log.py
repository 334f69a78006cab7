"""PredictionLogMonitor: prediction and label events in, detections out, for many models.

One :class:`~detectors.monitor.model_monitor.ModelMonitor` per (model, model_version),
at most ``max_versions`` per model (the least recently seen is dropped: a
rolled-back version starts over with a fresh warm-up and reference), and one
:class:`~detectors.monitor.versions.ModelVersions` per model, which compares every
new version with the model's baseline version from its first events and raises
``version_regression`` when it is worse (``model_version_accepted`` when it has
served long enough without). The first event of a version a model has not had
before is reported as a ``model_version_change`` event (not a detection) when
the model had another version before. Labels are joined to their predictions by
``prediction_id`` (:class:`~detectors.monitor.label_join.LabelJoin`, bounded by
count and event time; a caller that checkpoints them hands them back through
``restore_join``) and become outcomes: for a numeric score in [0, 1] and a
0/1 or boolean label, the prediction is wrong when ``(score >= 0.5) != label``;
for a string prediction, when it differs from the label; for a numeric
prediction and any other numeric label, the residual (prediction - label)
feeds MAE and RMSE. Object predictions are not scored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from itertools import groupby
from typing import NamedTuple, cast

import numpy as np

from detectors.monitor.label_join import LabelJoin, pending
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import MODEL_VERSION_CHANGE, Finding, Label, Prediction
from detectors.monitor.versions import ModelVersions, Outcomes
from fireline.errors import ConfigError


class _Outcome(NamedTuple):
    model: str
    version: str
    error: float  # NaN: not a classifier's outcome
    score: float  # the probability predicted, NaN if none
    residual: float  # NaN: not a regression's outcome
    predicted_at: float
    at: float


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
        restore_versions: Callable[[str], ModelVersions | None] | None = None,
        hold_findings: bool = False,
    ) -> None:
        """Monitors for every model; ``executor``, ``hold_findings``: see :class:`ModelMonitor`."""
        if max_versions < 1:
            raise ConfigError(f"max_versions must be at least 1; got {max_versions}.")
        self.config = config or MonitorConfig()
        self.max_versions = max_versions
        self.max_pending = max_pending
        self.max_wait_s = max_wait_s
        self.executor = executor  # where domain-classifier tests run (None: inline)
        self.hold_findings = hold_findings
        # A checkpointed monitor for (model, version), if the caller keeps them.
        self.restore = restore
        # A checkpointed label join of a model, so labels find predictions made before a restart.
        self.restore_join = restore_join
        # A checkpointed version comparison of a model: its baseline outlives restarts.
        self.restore_versions = restore_versions
        self._monitors: dict[str, OrderedDict[str, ModelMonitor]] = {}
        self._joins: dict[str, LabelJoin] = {}
        self._versions: dict[str, ModelVersions] = {}

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
        self._versions.clear()

    def accept(self, model: str, version: str) -> list[Finding]:
        """An engineer accepts ``version`` early: it becomes ``model``'s baseline now.

        Returns the ``model_version_accepted`` record and, if the version had
        regressed, the clearing of its ``version_regression``; nothing when this
        monitor does not compare that version (another worker may own the model).
        """
        versions = self._comparison(model)
        if versions is None:
            return []
        return versions.accept(version)

    def performance(self, models: Iterable[str]) -> list[tuple[str, str, str, str, float]]:
        """(model, version, metric, source, value): estimated and realised performance."""
        return [
            (model, *row)
            for model in models
            if (compared := self._comparison(model)) is not None
            for row in compared.performance()
        ]

    def versions(self, model: str) -> ModelVersions | None:
        """The version comparison of one model, if it has had predictions."""
        return self._comparison(model)

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
                monitor.hold_findings = self.hold_findings
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
        compared = self._comparison(model)
        if monitor is None:
            # After a restart the version served before is known from the comparison's
            # checkpoint only: a deploy during the downtime is still named.
            previous = next(reversed(versions)) if versions else None
            if previous is None and compared is not None and compared.last_version != version:
                previous = compared.last_version
            if previous is not None:
                found.append(
                    Finding(
                        batch[0].timestamp,
                        model,
                        version,
                        MODEL_VERSION_CHANGE,
                        None,
                        0.0,
                        f"model {model}: version {previous} -> {version}; compared with the "
                        "baseline version from its first events",
                        previous_version=previous,
                    )
                )
            # The model's inputs carry on from the version last seen (a deploy does not
            # change what the model is fed); the new version learns only its output.
            inputs = self._resumed(model, previous) if previous is not None else None
            monitor = versions[version] = ModelMonitor(
                model, version, self.config, self.executor, inputs, self.hold_findings
            )
            while len(versions) > self.max_versions:
                versions.popitem(last=False)
        versions.move_to_end(version)
        join.add_many(
            [p.prediction_id for p in batch],
            pending(
                version, _scorables([p.prediction for p in batch]), [p.timestamp for p in batch]
            ),
        )
        found += monitor.observe(batch)
        if compared is None:
            compared = self._versions[model] = ModelVersions(model, self.config.versions)
        return found + compared.observe(version, batch)

    def _comparison(self, model: str) -> ModelVersions | None:
        """The model's version comparison: in memory, else checkpointed (current settings)."""
        compared = self._versions.get(model)
        if compared is None and self.restore_versions is not None:
            compared = self.restore_versions(model)
            if compared is not None:
                compared.params = self.config.versions
                self._versions[model] = compared
        return compared

    def _labels(self, labels: Sequence[Label]) -> list[Finding]:
        found: list[Finding] = []
        for (model, version), outcomes in groupby(self._outcomes(labels), key=lambda o: o[:2]):
            rows = list(outcomes)
            monitor = self._resumed(model, version)
            errors = [r for r in rows if r.error == r.error]  # not NaN
            if monitor is not None and errors:
                found += monitor.observe_outcomes([r.error for r in errors], [r.at for r in errors])
            if (compared := self._comparison(model)) is not None:
                columns = np.array([r[2:] for r in rows], dtype=np.float64)
                found += compared.observe_outcomes(
                    version,
                    Outcomes(
                        columns[:, 0], columns[:, 1], columns[:, 2], columns[:, 3], rows[-1].at
                    ),
                )
        return found

    def _outcomes(self, labels: Sequence[Label]) -> list[_Outcome]:
        rows = []
        nan = float("nan")
        for label in labels:
            join = self._join(label.model, create=False)
            pending = join.match(label.prediction_id, label.timestamp) if join else None
            if pending is None:
                continue
            prediction = pending.prediction
            error = outcome_error(prediction, label.label)
            if error is not None:
                score = prediction if isinstance(prediction, float | int) else nan
                rows.append(
                    _Outcome(
                        label.model,
                        pending.model_version,
                        error,
                        float(score),
                        nan,
                        pending.timestamp,
                        label.timestamp,
                    )
                )
            elif (residual := outcome_residual(prediction, label.label)) is not None:
                rows.append(
                    _Outcome(
                        label.model,
                        pending.model_version,
                        nan,
                        nan,
                        residual,
                        pending.timestamp,
                        label.timestamp,
                    )
                )
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
    if isinstance(label, bool) or (label in (0, 1) and 0.0 <= prediction <= 1.0):
        return float((prediction >= 0.5) != bool(label))
    return None


def outcome_residual(prediction: float | str | None, label: float | str | bool) -> float | None:
    """Prediction minus label for a regression (numbers that are not a 0/1 outcome)."""
    if isinstance(prediction, str) or prediction is None:
        return None
    if isinstance(label, str | bool) or outcome_error(prediction, label) is not None:
        return None
    return float(prediction) - float(label)


def _scorables(predictions: list[object]) -> list[float | str | None]:
    """:func:`_scorable` of each (floats, the usual case, are kept as they are: no call each)."""
    if {*map(type, predictions)} <= {float}:
        return cast("list[float | str | None]", predictions)
    return [_scorable(p) for p in predictions]


def _scorable(prediction: object) -> float | str | None:
    if isinstance(prediction, bool):
        return str(prediction).lower()
    if isinstance(prediction, int | float | str):
        return prediction
    return None

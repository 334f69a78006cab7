"""The worker's detection pipelines run offline, in micro-batches, over recorded events.

``detect`` is the replay core: validated events in (metric samples, predictions,
labels, in any interleaving), detections and version changes out, in event-time
order, from the same :class:`MetricPipeline` and :class:`PredictionPipeline` the
worker runs. ``fireline replay`` and ``fireline backtest`` sit on top of it.

Feeding the monitors one event at a time costs ~2 ms an event; feeding them per
micro-batch costs tens of µs. Batches are cut by event time (``window_s``) or
size, and in each the predictions go before the labels, so interleaved labels
never split a batch into runs of one. That reordering changes nothing a label
sees (``prediction_batches`` cuts early where it could): every label still
matches exactly the predictions it would have matched event by event.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from agents.pipelines.events import LabelEvent, MetricEvent
from agents.pipelines.fast_events import (
    AnyLabelEvent,
    AnyMetricEvent,
    AnyPredictionEvent,
    FastLabelEvent,
    FastMetricEvent,
)
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.settings import DetectionSettings
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from fireline.detections import Detection
from fireline.incident import Change

__all__ = ["DEFAULT_BATCHING", "Batching", "detect", "fewer_collections", "prediction_batches"]

WINDOW_S = 10.0
MAX_BATCH = 2048


class _Predicted(Protocol):
    @property
    def timestamp(self) -> float: ...
    @property
    def model(self) -> str: ...
    @property
    def model_version(self) -> str: ...
    @property
    def prediction_id(self) -> str: ...


class _Labelled(Protocol):
    @property
    def timestamp(self) -> float: ...
    @property
    def model(self) -> str: ...
    @property
    def prediction_id(self) -> str: ...


P = TypeVar("P", bound=_Predicted)
L = TypeVar("L", bound=_Labelled)


@dataclass(frozen=True, slots=True)
class Batching:
    """How events are cut into micro-batches: by event time or by size, whichever first."""

    window_s: float = WINDOW_S
    max_events: int = MAX_BATCH


DEFAULT_BATCHING = Batching()


def prediction_batches(
    events: Iterable[P | L],
    is_label: Callable[[P | L], bool],
    monitor: PredictionLogMonitor,
    batching: Batching = DEFAULT_BATCHING,
) -> Iterator[list[P | L]]:
    """Micro-batches for ``monitor``: each batch's predictions first, then its labels.

    Both keep their arrival order within a model (models are independent, so a
    batch is grouped by model). Moving a label after later predictions of its
    batch would change what it matches in four cases, and the batch is cut
    before the prediction instead: the prediction has the id of a waiting
    label; it is of a version the monitor does not track yet (a new version
    may retire the one a waiting label belongs to); it is older than a waiting
    label by more than the join's wait (the label would expire it); or the
    join could overflow and drop a prediction a waiting label needs.
    """
    predictions: list[P] = []
    labels: list[L] = []
    waiting_ids: set[str] = set()
    waiting_models: set[str] = set()
    buffered_versions: set[tuple[str, str]] = set()
    per_model: dict[str, int] = {}
    newest_label = float("-inf")
    window_end = float("inf")

    def cut() -> list[P | L]:
        nonlocal newest_label, window_end
        batch: list[P | L] = sorted(predictions, key=_model)
        batch += sorted(labels, key=_model)
        predictions.clear()
        labels.clear()
        waiting_ids.clear()
        waiting_models.clear()
        buffered_versions.clear()
        per_model.clear()
        newest_label, window_end = float("-inf"), float("inf")
        return batch

    for event in events:
        if event.timestamp >= window_end or len(predictions) + len(labels) >= batching.max_events:
            yield cut()
        if not predictions and not labels:
            window_end = event.timestamp + batching.window_s
        if is_label(event):
            labels.append(event)  # type: ignore[arg-type]  # is_label says so
            waiting_ids.add(event.prediction_id)
            waiting_models.add(event.model)
            newest_label = max(newest_label, event.timestamp)
            continue
        prediction: P = event  # type: ignore[assignment]  # not a label: a prediction
        if labels and (
            prediction.timestamp < newest_label - monitor.max_wait_s
            or _must_cut(
                prediction, monitor, waiting_ids, waiting_models, buffered_versions, per_model
            )
        ):
            yield cut()
        predictions.append(prediction)
        buffered_versions.add((prediction.model, prediction.model_version))
        per_model[prediction.model] = per_model.get(prediction.model, 0) + 1
    if predictions or labels:
        yield cut()


def _must_cut(
    prediction: _Predicted,
    monitor: PredictionLogMonitor,
    waiting_ids: set[str],
    waiting_models: set[str],
    buffered_versions: set[tuple[str, str]],
    per_model: dict[str, int],
) -> bool:
    model = prediction.model
    if prediction.prediction_id in waiting_ids:
        return True
    if model not in waiting_models:
        return False
    version = (model, prediction.model_version)
    if version not in buffered_versions and monitor.monitor(*version) is None:
        return True
    join = monitor.join(model)
    waiting = len(join) if join is not None else 0
    return waiting + per_model.get(model, 0) + 1 > monitor.max_pending


def _model(event: _Labelled) -> str:
    return event.model


Output = Detection | Change
Event = AnyMetricEvent | AnyPredictionEvent | AnyLabelEvent
Logged = AnyPredictionEvent | AnyLabelEvent


def detect(
    events: Iterable[Event],
    settings: DetectionSettings | None = None,
    config: MonitorConfig | None = None,
    batching: Batching = DEFAULT_BATCHING,
    refresh_s: float = 30.0,
    evidence_points: int = 120,
) -> Iterator[Output]:
    """The worker's detections and version changes over ``events``, in event-time order.

    Events should come in event-time order, as a topic partition delivers them.
    Metric samples go to :class:`MetricPipeline` (a detector per series, by metric
    name), predictions and labels to :class:`PredictionPipeline`, each in
    micro-batches of ``batching``; what a batch finds is yielded sorted by its
    event time. Raised and cleared detections do not depend on the batching;
    refreshes of an alarm that stays on (``refresh_s`` of event time apart, as the
    worker re-sends them) are checked once a batch, so they may come a little later.
    ``evidence_points``: how many recent points of its series a raised metric
    detection carries (its chart).
    """
    metrics = MetricPipeline(settings or DetectionSettings(), refresh_s, evidence_points)
    predictions = PredictionPipeline(config, refresh_s=refresh_s)
    samples: list[AnyMetricEvent] = []
    logged: list[Logged] = []
    window_end = float("inf")

    def flush() -> list[Output]:
        nonlocal window_end
        found: list[Output] = list(metrics.process(samples)) if samples else []
        batches = prediction_batches(logged, _is_label_event, predictions.monitor, batching)
        for batch in batches:
            # the events of ``logged``, reordered (mypy cannot split its four-way union)
            detections, changes = predictions.process(cast("list[Logged]", batch))
            found += changes
            found += detections
        samples.clear()
        logged.clear()
        window_end = float("inf")
        found.sort(key=_event_time)  # stable: ties keep the pipelines' order
        return found

    for event in events:
        if event.timestamp >= window_end or len(samples) + len(logged) >= batching.max_events:
            yield from flush()
        if window_end == float("inf"):
            window_end = event.timestamp + batching.window_s
        if isinstance(event, MetricEvent | FastMetricEvent):
            samples.append(event)
        else:
            logged.append(event)
    yield from flush()


def _is_label_event(event: object) -> bool:
    return isinstance(event, LabelEvent | FastLabelEvent)


def _event_time(output: Output) -> float:
    return output.at if isinstance(output, Change) else output.signal.at


@contextmanager
def fewer_collections(gen0: int = 50_000) -> Iterator[None]:
    """Run the garbage collector's youngest generation less often, for the run.

    A replay or a backtest allocates millions of short-lived events, and a
    micro-batch holds thousands of them: at the default threshold (700
    allocations) the collector walked them so often that it took ~20 % of a
    backtest's CPU (bench/backtest.py) and ~10 % of a prediction replay's
    (bench/replay.py). What existed before the run is frozen out of its walks.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(gen0, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()

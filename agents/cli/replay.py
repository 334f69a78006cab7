"""``fireline replay``: run the service's detectors offline over recorded data.

``replay metrics``: the metric detector over a ``timestamp,value`` CSV, or the
worker's metric pipeline over JSON-lines metric events of any number of series
(``replay_metric_events``: each series gets the detector its metric name is
routed to, exactly as in the worker).
``replay predictions``: the prediction-log detectors over a JSON-lines file of
prediction and label events (see ``replay_predictions``).

Each output row's ``anomaly_score`` is computed from that row and the rows
before it only (the detector is fed in order, exactly as the worker would), so a
replay scores what the service would have said at the time.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

from agents.cli.progress import Progress, add_progress_flag, progress_bar
from agents.pipelines.events import MetricEvent
from agents.pipelines.fast_events import FastMetricEvent
from agents.pipelines.offline import (
    DEFAULT_BATCHING,
    Batching,
    detect,
    fewer_collections,
    prediction_batches,
)
from agents.recorded.contracts import FAST_PREDICTION_LOG, LineValidator
from agents.recorded.csv_series import read_metric_csv
from agents.recorded.jsonl import is_json_lines, read_events, total_size
from agents.recorded.rejects import stop_at_first
from agents.settings import DetectionSettings, Settings
from detectors import MetricEnsemble
from detectors.drift.domain_classifier import classifier_process
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import Finding, Label, Prediction
from fireline.detections import Detection

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One input row with the detector's verdict."""

    timestamp: str
    value: float
    anomaly_score: float
    alarm: bool


def replay_values(
    timestamps: list[str], values: list[float], settings: DetectionSettings
) -> Iterator[ReplayRow]:
    """Feed values in order; yield each row's score and alarm state after it."""
    detector = MetricEnsemble(settings.ensemble)  # what the worker runs on such a series
    for timestamp, value in zip(timestamps, values, strict=True):
        detector.update(value)
        score = detector.score if math.isfinite(value) else 0.0
        yield ReplayRow(timestamp, value, score, detector.alarm)


def write_replay_csv(rows: Iterable[ReplayRow], out: TextIO) -> int:
    """Write ``timestamp,value,anomaly_score,alarm``; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score", "alarm"])
    count = 0
    for row in rows:
        writer.writerow(
            [row.timestamp, repr(row.value), f"{row.anomaly_score:.6f}", int(row.alarm)]
        )
        count += 1
    return count


# -- replay metrics, JSON lines ----------------------------------------------------


def read_metric_events(
    path: Path, max_bytes: int = 65_536, on_bytes: Callable[[int], None] | None = None
) -> Iterator[MetricEvent]:
    """Metric events of a JSON-lines file, in file order; a bad line stops with ``file:line``."""
    events = read_events(path, LineValidator(max_bytes, (MetricEvent,)), stop_at_first, on_bytes)
    return cast(Iterator[MetricEvent], events)  # the only contract it accepts


def replay_metric_events(
    events: Iterable[MetricEvent], settings: DetectionSettings
) -> Iterator[dict[str, object]]:
    """The worker's metric pipeline over ``events``; one dict per alarm raised."""
    for found in detect(events, settings):
        if isinstance(found, Detection) and not found.cleared and not found.refresh:
            signal = found.signal
            yield {
                "timestamp": signal.at,
                "series": found.series,
                "kind": found.kind,
                "detector": signal.detector,
                "observed": signal.observed,
                "baseline": signal.baseline,
                "score": round(signal.score, 6),
            }


# -- replay predictions ------------------------------------------------------------


def read_prediction_log(
    path: Path, max_bytes: int = 65_536, on_bytes: Callable[[int], None] | None = None
) -> Iterator[Prediction | Label]:
    """Prediction and label events of a JSON-lines file, in file order, as the monitors' records.

    A bad line stops the replay with ``file:line``, the reason and the contract it
    broke. ``on_bytes`` is told how many bytes were read (a progress bar's measure).
    """
    validator = LineValidator(max_bytes, FAST_PREDICTION_LOG)  # msgspec, pydantic for the rest
    for event in read_events(path, validator, stop_at_first, on_bytes):
        assert not isinstance(event, MetricEvent | FastMetricEvent)  # not a contract it accepts
        yield event.to_record()


def replay_predictions(
    events: Iterable[Prediction | Label],
    config: MonitorConfig | None = None,
    batching: Batching = DEFAULT_BATCHING,
    executor: Executor | None = None,
) -> Iterator[dict[str, object]]:
    """Feed events in micro-batches, as the worker would; yield one dict per detection.

    Labels interleaved with predictions are batched after them
    (:func:`~agents.pipelines.offline.prediction_batches`): the detections are
    those of feeding the events one at a time. ``executor`` (a child process)
    runs the domain classifier's fits while the next batches are read and fed;
    the batches' detections wait for them, so the output is the inline one
    (``executor`` None), byte for byte.
    """
    monitor = PredictionLogMonitor(config, executor=executor, hold_findings=executor is not None)
    waiting: deque[list[Finding]] = deque()  # each batch's findings, in order
    for batch in prediction_batches(events, _is_label_record, monitor, batching):
        waiting.append(monitor.process(batch))
        while waiting and all(f.held is None or f.held.ready() for f in waiting[0]):
            yield from _detections(waiting.popleft())
    while waiting:
        yield from _detections(waiting.popleft())


def _is_label_record(event: Prediction | Label) -> bool:
    return isinstance(event, Label)


def _detections(found: list[Finding]) -> Iterator[dict[str, object]]:
    settled = (s for f in found for s in (f.held.settle() if f.held is not None else [f]))
    for d in settled:
        if d.cleared:
            continue  # the replay prints what raised; the worker also uses the clears
        yield {
            "timestamp": d.timestamp,
            "model": d.model,
            "model_version": d.model_version,
            "kind": d.kind,
            "feature": d.feature,
            "score": round(d.score, 6),
            "message": d.message,
        }


def write_detections(detections: Iterable[dict[str, object]], out: TextIO) -> int:
    """One JSON object per line; return the number written."""
    count = 0
    for detection in detections:
        out.write(json.dumps(detection) + "\n")
        count += 1
    return count


# -- the command ---------------------------------------------------------------------


def add_command(sub: argparse._SubParsersAction[Any]) -> None:
    """``fireline replay metrics FILE`` and ``fireline replay predictions FILE``."""
    replay = sub.add_parser("replay", help="run a detector offline over recorded data")
    replay_sub = replay.add_subparsers(required=True, metavar="KIND")
    metrics = replay_sub.add_parser(
        "metrics",
        help="timestamp,value CSV in: adds anomaly_score and alarm per row; or metric events "
        "as JSON lines (any number of series) in: one JSON line per alarm raised",
    )
    metrics.add_argument("file", type=Path)
    metrics.add_argument("--out", type=Path, help="output file (default: stdout)")
    add_progress_flag(metrics)
    metrics.set_defaults(handler=_replay_metrics)
    predictions = replay_sub.add_parser(
        "predictions",
        help="prediction/label JSON lines in; one JSON line per detection out",
    )
    predictions.add_argument("file", type=Path)
    predictions.add_argument("--out", type=Path, help="output JSON lines (default: stdout)")
    predictions.add_argument(
        "--fit-in-child",
        action="store_true",
        help="run the domain classifier's fits in a child process beside the replay (the same "
        "output; faster for long logs: the child's start costs ~5 s of CPU)",
    )
    add_progress_flag(predictions)
    predictions.set_defaults(handler=_replay_predictions)


def _replay_metrics(args: argparse.Namespace, settings: Settings) -> int:
    if is_json_lines(args.file):
        progress = progress_bar(args.progress, "replay metrics", total_size([args.file]), "bytes")
        events = read_metric_events(args.file, settings.max_event_bytes, progress.advance)
        found = replay_metric_events(events, settings.detection)
        return _write(args.out, found, write_detections, progress, "detection(s) written to")
    timestamps, values = read_metric_csv(args.file)
    progress = progress_bar(args.progress, "replay metrics", len(values), "rows")
    rows = progress.track(replay_values(timestamps, values, settings.detection))
    return _write(args.out, rows, write_replay_csv, progress, "rows scored into")


def _replay_predictions(args: argparse.Namespace, settings: Settings) -> int:
    progress = progress_bar(args.progress, "replay predictions", total_size([args.file]), "bytes")
    events = read_prediction_log(args.file, settings.max_event_bytes, progress.advance)
    # The child's start (its imports) costs ~5 s of CPU, the fits of 20 tests:
    # only a long log gains from it (docs/performance.md, "Fast replay").
    fits = classifier_process() if args.fit_in_child else None
    found = replay_predictions(events, executor=fits)
    try:
        with fewer_collections():
            return _write(args.out, found, write_detections, progress, "detection(s) written to")
    finally:
        if fits is not None:
            fits.close()


def _write(
    out: Path | None,
    rows: Iterable[T],
    writer: Callable[[Iterable[T], TextIO], int],
    progress: Progress,
    done: str,
) -> int:
    """Rows to stdout or to ``out`` (then a summary line on stderr, after the bar)."""
    try:
        if out is None:
            writer(rows, sys.stdout)
        else:
            with out.open("w", newline="", encoding="utf-8") as handle:
                count = writer(rows, handle)
    finally:
        progress.close()
    if out is not None:
        print(f"{count} {done} {out}", file=sys.stderr)
    return 0

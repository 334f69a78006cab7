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

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agents.pipelines.fast_events import (
    AnyMetricEvent,
    FastLabelEvent,
    FastMetricEvent,
    FastPredictionEvent,
)
from agents.pipelines.ingest import Record, Validator
from agents.pipelines.offline import DEFAULT_BATCHING, Batching, detect, prediction_batches
from agents.settings import DetectionSettings
from detectors import MetricEnsemble
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import Label, Prediction
from fireline.detections import Detection
from fireline.errors import ConfigError, EventError


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


def read_metric_csv(path: Path) -> tuple[list[str], list[float]]:
    """Rows of a ``timestamp,value`` CSV, in file order; errors name the line."""
    timestamps: list[str] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"timestamp", "value"} <= set(reader.fieldnames):
                raise ConfigError(f"{path}:1: expected a header with columns timestamp,value")
            for line, row in enumerate(reader, start=2):
                try:
                    values.append(float(row["value"]))
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"{path}:{line}: value {row['value']!r} is not a number"
                    ) from None
                timestamps.append(row["timestamp"])
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return timestamps, values


def write_replay_csv(rows: Iterator[ReplayRow], out: TextIO) -> int:
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


def is_json_lines(path: Path) -> bool:
    """Whether ``path`` holds JSON lines (its first non-blank byte opens an object)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return head.startswith(b"{")


def read_metric_events(
    path: Path, max_bytes: int = 65_536, on_bytes: Callable[[int], None] | None = None
) -> Iterator[FastMetricEvent]:
    """Metric events of a JSON-lines file, in file order; a bad line stops with ``file:line``."""
    validator = Validator(FastMetricEvent, max_bytes)
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if on_bytes is not None:
                    on_bytes(len(line))
                if not line.strip():
                    continue
                record = Record(str(path), 0, number, None, line.rstrip(b"\r\n"))
                try:
                    event = validator.validate_one(record)
                except EventError as exc:
                    raise ConfigError(f"{path}:{number}: {exc.reason}: {exc.detail}") from None
                yield event
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def replay_metric_events(
    events: Iterable[AnyMetricEvent], settings: DetectionSettings
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
    """Events of a JSON-lines file, in file order; a bad line stops with ``file:line``.

    A line with ``label`` and no ``features`` is a label event, any other a
    prediction event; both are checked by the topics' validators (agents.pipelines.events).
    ``on_bytes`` is told the size of each line read (a progress bar's measure).
    """
    predictions = Validator(FastPredictionEvent, max_bytes)
    labels = Validator(FastLabelEvent, max_bytes)
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if on_bytes is not None:
                    on_bytes(len(line))
                if not line.strip():
                    continue
                record = Record(str(path), 0, number, None, line.rstrip(b"\r\n"))
                try:
                    event = _log_event(record, predictions, labels)
                except EventError as exc:
                    raise ConfigError(f"{path}:{number}: {exc.reason}: {exc.detail}") from None
                yield event
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _log_event(
    record: Record, predictions: Validator[FastPredictionEvent], labels: Validator[FastLabelEvent]
) -> Prediction | Label:
    """Validate one line as whichever event it is; raise ``EventError`` if it is neither."""
    value = record.value or b""
    if b"features" in value:
        # Usually a prediction: validated once, without parsing it a second time to
        # tell (a valid prediction has a ``features`` key, so it cannot be a label).
        try:
            return predictions.validate_one(record).to_record()
        except EventError:
            if not _is_label(value):
                raise
    if _is_label(value):
        return labels.validate_one(record).to_record()
    return predictions.validate_one(record).to_record()


def _is_label(line: bytes) -> bool:
    try:
        parsed = json.loads(line)
    except ValueError:
        return False  # the prediction validator names what is wrong
    return isinstance(parsed, dict) and "label" in parsed and "features" not in parsed


def replay_predictions(
    events: Iterable[Prediction | Label],
    config: MonitorConfig | None = None,
    batching: Batching = DEFAULT_BATCHING,
) -> Iterator[dict[str, object]]:
    """Feed events in micro-batches, as the worker would; yield one dict per detection.

    Labels interleaved with predictions are batched after them
    (:func:`~agents.pipelines.offline.prediction_batches`): the detections are
    those of feeding the events one at a time.
    """
    monitor = PredictionLogMonitor(config)
    for batch in prediction_batches(events, _is_label_record, monitor, batching):
        yield from _detections(monitor, batch)


def _is_label_record(event: Prediction | Label) -> bool:
    return isinstance(event, Label)


def _detections(
    monitor: PredictionLogMonitor, events: list[Prediction | Label]
) -> Iterator[dict[str, object]]:
    for d in monitor.process(events):
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

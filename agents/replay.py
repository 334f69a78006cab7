"""``fireline replay``: run the service's metric detector offline over a CSV file.

Each output row's ``anomaly_score`` is computed from that row and the rows
before it only (the detector is fed in order, exactly as the worker would), so a
replay scores what the service would have said at the time.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agents.pipeline import metric_detector
from agents.settings import Detection
from fireline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One input row with the detector's verdict."""

    timestamp: str
    value: float
    anomaly_score: float
    alarm: bool


def replay_values(
    timestamps: list[str], values: list[float], settings: Detection
) -> Iterator[ReplayRow]:
    """Feed values in order; yield each row's score and alarm state after it."""
    detector = metric_detector(settings)
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

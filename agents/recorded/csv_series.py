"""One recorded metric series in a ``timestamp,value`` CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

from fireline.errors import ConfigError


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

"""Recorded events in JSON-lines files: one file in order, or several merged by event time."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from agents.pipelines.ingest import Record
from agents.recorded.contracts import InputEvent, LineValidator
from agents.recorded.rejects import OnReject
from fireline.errors import ConfigError, EventError

READ_CHUNK = 1 << 20  # bytes of lines read at once (and told to ``on_bytes`` at once)


def is_json_lines(path: Path) -> bool:
    """Whether ``path`` holds JSON lines (its first non-blank byte opens an object)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return head.startswith(b"{")


def read_events(
    path: Path,
    validator: LineValidator,
    on_reject: OnReject,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[InputEvent]:
    """The valid events of one file, in file order; each bad line goes to ``on_reject``.

    ``on_bytes`` is told how many bytes were read, a chunk at a time (a progress
    bar's measure).
    """
    name, number = str(path), 0
    validate = validator.validate
    try:
        with path.open("rb") as handle:
            while lines := handle.readlines(READ_CHUNK):
                if on_bytes is not None:
                    on_bytes(sum(map(len, lines)))
                for line in lines:
                    number += 1
                    line = line.rstrip()  # the newline, and nothing JSON would miss
                    if not line:
                        continue
                    try:
                        yield validate(Record(name, 0, number, None, line))
                    except EventError as exc:
                        on_reject(f"{path}:{number}", exc)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def read_merged(
    paths: Iterable[Path],
    validator: LineValidator,
    on_reject: OnReject,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[InputEvent]:
    """Every valid event of the files, merged by event time (each file read in order)."""
    streams = [read_events(path, validator, on_reject, on_bytes) for path in paths]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_event_time)


def total_size(paths: Iterable[Path]) -> int:
    """The files' bytes together (a progress bar's total); an unreadable file counts 0."""
    return sum(_size(path) for path in paths)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it names the problem


def _event_time(event: InputEvent) -> float:
    return event.timestamp

"""Recorded input events for a backtest, from JSON-lines files or the input topics, in event time.

Both sources validate each record with the worker's own contracts
(:mod:`agents.pipelines.events`): a record that breaks its contract is counted
with where it was and why, as the worker would dead-letter it, and the rest go on.
Events come out merged across files (or partitions) by their ``timestamp``.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.ingest import Record, Validator
from fireline.errors import ConfigError, EventError

InputEvent = MetricEvent | PredictionEvent | LabelEvent
MAX_REJECTS_KEPT = 20  # the first few rejects are shown; the rest are only counted


@dataclass
class Rejects:
    """Records that broke their contract: how many, and the first few with where and why."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, error: EventError) -> None:
        """Count one reject; keep its description if there is room."""
        self.count += 1
        if len(self.examples) < MAX_REJECTS_KEPT:
            self.examples.append(f"{where}: {error.reason}: {error.detail}")


class EventValidators:
    """The three input contracts' validators, chosen by topic or by the record's fields."""

    def __init__(self, max_bytes: int) -> None:
        self.metrics = Validator(MetricEvent, max_bytes)
        self.predictions = Validator(PredictionEvent, max_bytes)
        self.labels = Validator(LabelEvent, max_bytes)

    def for_line(self, line: bytes) -> Validator[Any]:
        """A prediction has ``features``, a label a ``prediction_id`` (and no features)."""
        if b'"features"' in line:
            return self.predictions
        if b'"prediction_id"' in line:
            return self.labels
        return self.metrics


def read_event_files(
    paths: Iterable[Path],
    rejects: Rejects,
    max_bytes: int = 65_536,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[InputEvent]:
    """Every valid event of the files, merged by event time (each file read in order)."""
    validators = EventValidators(max_bytes)
    streams = [_read_file(path, validators, rejects, on_bytes) for path in paths]
    return heapq.merge(*streams, key=lambda event: event.timestamp)


def _read_file(
    path: Path,
    validators: EventValidators,
    rejects: Rejects,
    on_bytes: Callable[[int], None] | None,
) -> Iterator[InputEvent]:
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if on_bytes is not None:
                    on_bytes(len(line))
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                record = Record(str(path), 0, number, None, line)
                try:
                    yield validators.for_line(line).validate_one(record)
                except EventError as exc:
                    rejects.add(f"{path}:{number}", exc)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class TimeRange:
    """Event times ``[start, end)`` in epoch seconds, and how late records may be produced.

    ``lateness_s``: a record is produced at most this long after its event time;
    the topics are read from ``start - lateness_s`` (by record timestamp) and a
    partition is finished at its first record stamped after ``end + lateness_s``.
    """

    start: float
    end: float
    lateness_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ConfigError(f"--to must be after --from (got {self.start} .. {self.end})")


async def read_topics(
    consumer: Any,
    topics: dict[str, Validator[Any]],
    window: TimeRange,
    rejects: Rejects,
    idle_ms: int = 1000,
    on_record: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[InputEvent]:
    """The valid events of ``topics`` in ``window``, merged across partitions by event time.

    ``consumer``: a started aiokafka consumer without a group (nothing is committed).
    Every partition is read from the offset of ``window.start - lateness`` until
    a record stamped past ``window.end + lateness``, or until it has nothing more
    once its end offset (taken at the start) is reached. The end offset alone is
    not trusted: a broker may report it low (Tansu: the last batch's base + 1).
    ``on_total`` is told how many records lie between the start and end offsets
    (a progress bar's total; an estimate, for the same reason).
    """
    merge = _PartitionMerge(consumer, topics, window, rejects, on_record)
    total = await merge.seek()
    if on_total is not None:
        on_total(total)
    while merge.open or merge.heads:
        await merge.fill(idle_ms)
        for event in merge.ready():
            yield event


class _PartitionMerge:
    """A k-way merge by event time of partitions read from the start of a time window."""

    def __init__(
        self,
        consumer: Any,
        topics: dict[str, Validator[Any]],
        window: TimeRange,
        rejects: Rejects,
        on_record: Callable[[], None] | None,
    ) -> None:
        self.consumer = consumer
        self.topics = topics
        self.window = window
        self.rejects = rejects
        self.on_record = on_record
        self.open: set[Any] = set()  # partitions that may still hold events in the window
        self.heads: list[tuple[float, int, Any]] = []  # (event time, tie-break, partition)
        self._buffers: dict[Any, deque[InputEvent]] = {}
        self._ends: dict[Any, int] = {}
        self._order = 0
        self._stop_ms = int((window.end + window.lateness_s) * 1000)

    async def seek(self) -> int:
        """Assign every partition and seek it to the window; return the records to its end."""
        from aiokafka import TopicPartition  # the CLI needs aiokafka only for this source

        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return 0
        self.consumer.assign(partitions)
        self._buffers = {tp: deque() for tp in partitions}
        self._ends = await self.consumer.end_offsets(partitions)
        first_ms = max(int((self.window.start - self.window.lateness_s) * 1000), 0)
        starts = await self.consumer.offsets_for_times({tp: first_ms for tp in partitions})
        total = 0
        for tp in partitions:
            found = starts.get(tp)
            if found is not None:  # else nothing is stamped at or after the start
                self.consumer.seek(tp, found.offset)
                self.open.add(tp)
                total += max(self._ends.get(tp, 0) - found.offset, 0)
        return total

    async def fill(self, idle_ms: int) -> None:
        """Fetch for every open partition with nothing buffered; close the finished ones."""
        starving = [tp for tp in self.open if not self._buffers[tp]]
        if not starving:
            return
        fetched = await self.consumer.getmany(*starving, timeout_ms=idle_ms)
        for tp in starving:
            records = fetched.get(tp, [])
            if records:
                self._take(tp, records)
            elif await self.consumer.position(tp) >= self._ends.get(tp, 0):
                self.open.discard(tp)  # nothing more arrived after its end offset
            if self._buffers[tp] and not self._in_heads(tp):
                self._push(tp)

    def ready(self) -> Iterator[InputEvent]:
        """Events that no open partition can precede: each open one has one buffered."""
        while self.heads and all(self._buffers[tp] for tp in self.open):
            _, _, tp = heapq.heappop(self.heads)
            yield self._buffers[tp].popleft()
            if self._buffers[tp]:
                self._push(tp)

    def _take(self, tp: Any, records: list[Any]) -> None:
        for record in records:
            if self.on_record is not None:
                self.on_record()
            if record.timestamp > self._stop_ms:
                self.open.discard(tp)
                return
            try:
                event = self.topics[tp.topic].validate_one(record)
            except EventError as exc:
                self.rejects.add(f"{tp.topic}[{tp.partition}]@{record.offset}", exc)
                continue
            if self.window.start <= event.timestamp < self.window.end:
                self._buffers[tp].append(event)

    def _in_heads(self, tp: Any) -> bool:
        return any(head[2] == tp for head in self.heads)

    def _push(self, tp: Any) -> None:
        heapq.heappush(self.heads, (self._buffers[tp][0].timestamp, self._order, tp))
        self._order += 1

"""The incident agent's work: one input about a subject → table state and incident events.

Runs in the worker that owns the subject's partition of ``fireline.detections``;
the subject's :class:`SubjectState` lives in a Faust table whose changelog topic
makes it survive restarts and rebalances. :meth:`IncidentDesk.apply` leaves the
state unstored so the caller can publish the incident events first and store
after (agents/service/incident_inputs.py): a crash in between republishes the
same events (same ids and revisions) rather than losing them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from agents.incidents.manager import IncidentManager, SubjectState
from agents.incidents.silences import Silence
from fireline.detections import (
    INPUT_ADAPTER,
    ChangeInput,
    CommandInput,
    DetectionInput,
    TickInput,
)
from fireline.errors import IncidentStateError
from fireline.incident import Incident

log = logging.getLogger(__name__)


class StateTable(Protocol):
    """Subject states by key; each write names the partition its changelog record goes to.

    The partition is the subject's partition of ``fireline.detections``: whoever
    owns it next restores the state from that changelog partition, whichever
    path (the consumer or an in-process hand-off) applied the input.
    """

    def get(self, key: bytes) -> bytes | None:
        """The state stored under ``key`` (this worker's copy)."""
        ...

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every state this worker holds, including standby copies of others' partitions."""
        ...

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Store ``value`` and queue its changelog record in ``partition``."""
        ...

    def delete(self, key: bytes, partition: int) -> None:
        """Drop ``key`` and queue its tombstone in ``partition``."""
        ...


class MemoryStateTable(dict[bytes, bytes]):
    """A StateTable in memory (backtests, tests): partitions are not kept."""

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Store ``value``."""
        self[key] = value

    def delete(self, key: bytes, partition: int) -> None:
        """Drop ``key`` if present."""
        self.pop(key, None)


class SilenceSource(Protocol):
    """Where the desk reads the silences currently known."""

    def silence_list(self) -> list[Silence]:
        """All silences, active or not."""
        ...


@dataclass
class Applied:
    """What one input did: the incident events to publish, then the states to store."""

    events: list[Incident] = field(default_factory=list)
    states: list[tuple[bytes, SubjectState]] = field(default_factory=list)
    partition: int = -1


class IncidentDesk:
    """Applies inputs to subject states kept in ``table`` (subject key → state JSON)."""

    def __init__(
        self,
        manager: IncidentManager,
        table: StateTable,
        silences: SilenceSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.table = table
        self.silences = silences
        self.clock = clock

    def handle(self, key: bytes | None, value: bytes | None, partition: int) -> list[Incident]:
        """Apply one input and store its state at once; return the incident events it caused."""
        applied = self.apply(key, value, partition)
        self.store(applied)
        return applied.events

    def apply(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int | None = None
    ) -> Applied:
        """Apply one input to the states it concerns, without storing them (see :meth:`store`).

        ``offset``: where the input sits in its partition of ``fireline.detections``;
        an input at or before the subject's ``applied`` offset was applied already
        and changes nothing.
        """
        try:
            message = INPUT_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed incident input in partition %d: %s", partition, exc)
            return Applied()
        now = self.clock()
        silences = self.silences.silence_list()
        if isinstance(message, TickInput):
            return self._tick(partition, now, silences)
        if key is None:
            log.error("skipping %s input without a subject key", message.type)
            return Applied()
        state = self._load(key)
        if offset is not None and partition == state.applied_partition and offset <= state.applied:
            log.debug("input at %d@%d applied already to %r", offset, partition, key)
            return Applied()
        events: list[Incident] = []
        if isinstance(message, DetectionInput):
            events = self.manager.on_detection(state, message.detection, now, silences)
        elif isinstance(message, ChangeInput):
            events = self.manager.on_change(state, message.change, now)
        elif isinstance(message, CommandInput):
            events = self._command(state, message, now)
        if offset is not None:
            state.applied, state.applied_partition = offset, partition
        return Applied(events, [(key, state)], partition)

    def store(self, applied: Applied) -> None:
        """Write the states an input changed to the table (after its events are published)."""
        for key, state in applied.states:
            self._store(key, state, applied.partition)

    def _command(self, state: SubjectState, command: CommandInput, now: float) -> list[Incident]:
        try:
            if command.command == "acknowledge":
                return [self.manager.acknowledge(state, command.incident_id, command.by, now)]
            if command.command == "escalate":
                return [self.manager.escalate(state, command.incident_id, command.by)]
            return [self.manager.resolve(state, command.incident_id, command.by, now)]
        except IncidentStateError as exc:  # raced with auto-resolve or another human
            log.info("ignored %s of %s: %s", command.command, command.incident_id, exc)
            return []

    def _tick(self, partition: int, now: float, silences: list[Silence]) -> Applied:
        applied = Applied(partition=partition)
        for key, state in list(self._states_in(partition)):
            changed = self.manager.tick(state, now, silences)
            applied.events.extend(changed)
            if changed or state.empty:
                applied.states.append((key, state))
        return applied

    def _states_in(self, partition: int) -> Iterable[tuple[bytes, SubjectState]]:
        # The table also holds standby copies of other workers' partitions: only
        # the partition this tick was sent to is ours to change.
        for key, raw in list(self.table.items()):
            state = SubjectState.model_validate_json(raw)
            if state.partition == partition:
                yield key, state

    def _load(self, key: bytes) -> SubjectState:
        raw = self.table.get(key)
        return SubjectState() if raw is None else SubjectState.model_validate_json(raw)

    def _store(self, key: bytes, state: SubjectState, partition: int) -> None:
        if state.empty:
            if self.table.get(key) is not None:
                self.table.delete(key, partition)
            return
        state.partition = partition
        self.table.put(key, state.model_dump_json().encode(), partition)

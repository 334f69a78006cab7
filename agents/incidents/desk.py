"""The incident agent's work: one input about a subject → table state and incident events.

Runs inside the Faust agent that owns the subject's partition of
``fireline.detections``; the subject's :class:`SubjectState` lives in a Faust
table whose changelog topic makes it survive restarts and rebalances.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, MutableMapping
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


class SilenceSource(Protocol):
    """Where the desk reads the silences currently known."""

    def silence_list(self) -> list[Silence]:
        """All silences, active or not."""
        ...


class IncidentDesk:
    """Applies inputs to subject states kept in ``table`` (subject key → state JSON)."""

    def __init__(
        self,
        manager: IncidentManager,
        table: MutableMapping[bytes, bytes],
        silences: SilenceSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.table = table
        self.silences = silences
        self.clock = clock

    def handle(self, key: bytes | None, value: bytes | None, partition: int) -> list[Incident]:
        """Apply one input; return the incident events it caused, oldest first."""
        try:
            message = INPUT_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed incident input in partition %d: %s", partition, exc)
            return []
        now = self.clock()
        silences = self.silences.silence_list()
        if isinstance(message, TickInput):
            return self._tick(partition, now, silences)
        if key is None:
            log.error("skipping %s input without a subject key", message.type)
            return []
        state = self._load(key)
        events: list[Incident] = []
        if isinstance(message, DetectionInput):
            events = self.manager.on_detection(state, message.detection, now, silences)
        elif isinstance(message, ChangeInput):
            events = self.manager.on_change(state, message.change, now)
        elif isinstance(message, CommandInput):
            events = self._command(state, message, now)
        self._store(key, state, partition)
        return events

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

    def _tick(self, partition: int, now: float, silences: list[Silence]) -> list[Incident]:
        events: list[Incident] = []
        for key, state in list(self._states_in(partition)):
            changed = self.manager.tick(state, now, silences)
            events.extend(changed)
            if changed or state.empty:
                self._store(key, state, partition)
        return events

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
            if key in self.table:
                del self.table[key]
            return
        state.partition = partition
        self.table[key] = state.model_dump_json().encode()

"""The worker's path, offline and on event time: detectors → incident desk → playbooks, all dry.

The same objects the worker builds (:mod:`agents.service.parts`): the metric and
prediction pipelines, an :class:`~agents.incidents.desk.IncidentDesk` over an
in-memory table, and one :class:`~playbooks.engine.PlaybookEngine` per playbook
set, every one in global dry run, so each step is rendered and recorded and
nothing is sent anywhere. Time is the events' time: the desk's clock is the
event time of the input it applies, lifecycle ticks run every ``tick_s`` of
event time, and guardrails (cooldowns, runs per hour) and ``verify`` deadlines
count in it too, so a week of traffic replays in minutes with the timers it
would have had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.incidents.desk import IncidentDesk, MemoryStateTable
from agents.incidents.manager import IncidentManager
from agents.incidents.silences import Silence
from agents.pipelines.events import MetricEvent
from agents.pipelines.offline import Batching, detect, fewer_collections
from agents.recorded.contracts import InputEvent
from agents.settings import Settings
from detectors.monitor.model_monitor import MonitorConfig
from fireline.detections import ChangeInput, Detection, DetectionInput, TickInput
from fireline.errors import ConfigError, PlaybookValidationError
from fireline.incident import Change, Incident, Severity
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.engine import Guardrails, PlaybookEngine
from playbooks.steps import Outcome, StepRecord

# Micro-batches: detectors cost least per sample fed many samples of a series at
# once. Where batches are cut changes nothing the desk sees but when an alarm that
# stays on is re-sent (checked once a batch, so up to a batch's span later than
# signal_refresh_s): a batch spans at most half the margin to signal_expiry_s,
# so no signal expires for it (see Backtest.__init__).
BATCHING = Batching(window_s=60.0, max_events=32768)


@dataclass
class PlannedStep:
    """One step a playbook would have run (or held, or skipped), with its rendered params."""

    at: float  # event time
    incident_id: str
    transition: str  # the incident event it answered, or "verify"
    playbook: str
    step: str
    action: str
    outcome: str
    detail: str
    params: dict[str, object] = field(default_factory=dict)
    requires_approval: bool = False

    @property
    def would_run(self) -> bool:
        """Recorded as run (dry): not skipped, held or refused."""
        return self.outcome == Outcome.DRY_RUN.value

    def identity(self) -> tuple[str, str, str, str, str]:
        """What makes two sets' steps "the same step" in a comparison."""
        return (self.incident_id, self.transition, self.playbook, self.step, self.action)


@dataclass
class IncidentSeen:
    """One incident's life as the backtest saw it."""

    id: str
    kind: str
    subject: str
    title: str
    opened_at: float
    severity: str
    status: str
    resolved_at: float | None = None
    resolution: str | None = None
    likely_cause: str | None = None
    events: int = 1
    notified: bool = True  # not silenced or flapping when it opened

    @property
    def duration_s(self) -> float | None:
        """Open to resolved, in event time (None while still open)."""
        return None if self.resolved_at is None else self.resolved_at - self.opened_at


@dataclass
class PlaybookSetRun:
    """What one playbook set would have done."""

    label: str  # the directory it came from
    steps: list[PlannedStep] = field(default_factory=list)


@dataclass
class BacktestResult:
    """Everything the backtest saw and planned."""

    first_event: float | None = None
    last_event: float | None = None
    events: int = 0
    detections: int = 0
    incidents: dict[str, IncidentSeen] = field(default_factory=dict)
    runs: list[PlaybookSetRun] = field(default_factory=list)


_TICK = TickInput().model_dump_json().encode()


class _EventClock:
    """The desk's clock: the event time of what is being applied (never going back)."""

    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, to: float) -> None:
        self.now = max(self.now, to)

    def __call__(self) -> float:
        return self.now


class _NoSilences:
    def silence_list(self) -> list[Silence]:
        return []


class Backtest:
    """Feeds events in event-time order and records incidents and the steps they would run.

    Detection is the replay core's (:func:`agents.pipelines.offline.detect`): the
    same pipelines, micro-batches and guarantees as ``fireline replay``. What it
    finds goes to the desk in event-time order, and the lifecycle ticks and
    ``verify`` deadlines before each detection run first, so what the desk and
    the engines see does not depend on where the batches were cut.
    """

    def __init__(
        self,
        settings: Settings,
        playbook_dirs: Sequence[Path],
        batching: Batching = BATCHING,
        monitor: MonitorConfig | None = None,
    ) -> None:
        """``monitor``: the prediction monitors' configuration (default: the worker's)."""
        if not playbook_dirs:
            raise ConfigError("a backtest needs at least one playbooks directory")
        self.settings = settings
        policy = settings.incidents
        margin = policy.signal_expiry_s - policy.signal_refresh_s
        self.batching = Batching(min(batching.window_s, margin / 2), batching.max_events)
        self.monitor = monitor or MonitorConfig(versions=settings.detection.versions)
        self.clock = _EventClock()
        self.desk = IncidentDesk(
            IncidentManager(policy), MemoryStateTable(), _NoSilences(), self.clock
        )
        self.tick_s = policy.tick_s
        self.engines = [(str(d), _dry_engine(settings, d)) for d in playbook_dirs]
        self.result = BacktestResult(runs=[PlaybookSetRun(label) for label, _ in self.engines])
        self._approval_steps = [
            {(p.name, s.label) for p in engine.playbooks for s in p.steps if s.require_approval}
            for _, engine in self.engines
        ]
        self._latest: dict[str, Incident] = {}  # incident id → its latest event
        self._next_tick: float | None = None

    async def run(self, events: Iterable[InputEvent]) -> BacktestResult:
        """Detect over every event, apply what is found, then run the timers to the last event."""
        policy = self.settings.incidents
        found = detect(
            self._counted(events),
            self.settings.detection,
            self.monitor,
            self.batching,
            refresh_s=policy.signal_refresh_s,
            evidence_points=policy.evidence_points,
        )
        with fewer_collections():
            for output in found:
                await self._apply(output)
        if self.result.last_event is not None:
            await self._advance(self.result.last_event)
        return self.result

    def _counted(self, events: Iterable[InputEvent]) -> Iterator[InputEvent]:
        """The events to detect on, counted and their time span noted on the way."""
        result = self.result
        watch_predictions = self.settings.detection.watch_predictions
        count = 0
        first = last = None
        try:
            for event in events:
                count += 1
                last = event.timestamp
                if first is None:
                    first = last
                    self._next_tick = first + self.tick_s
                    result.first_event = first
                if watch_predictions or isinstance(event, MetricEvent):
                    yield event
        finally:
            result.events, result.last_event = count, last

    async def _apply(self, output: Change | Detection) -> None:
        """One detection or version change, keyed as the worker publishes it, at its event time."""
        if isinstance(output, Change):
            at, key = output.at, f"model:{output.model}".encode()
            value = ChangeInput(change=output).model_dump_json().encode()
        else:
            at, key = output.signal.at, output.subject_key.encode()
            value = DetectionInput(detection=output).model_dump_json().encode()
            self.result.detections += not output.cleared and not output.refresh
        await self._advance(at)
        await self._incidents(self.desk.handle(key, value, 0))

    async def _advance(self, to: float) -> None:
        """Run every tick and verify deadline up to event time ``to``."""
        tick = _TICK
        while self._next_tick is not None and self._next_tick <= to:
            self.clock.advance(self._next_tick)
            self._next_tick += self.tick_s
            await self._incidents(self.desk.handle(None, tick, 0))
            await self._verifications()
        self.clock.advance(to)

    async def _verifications(self) -> None:
        for (_, engine), run, approvals in zip(
            self.engines, self.result.runs, self._approval_steps, strict=True
        ):
            names = [p.name for p in engine.playbooks]
            for playbook, deadline in engine.due(names, self.clock.now):
                current = self._latest.get(deadline.incident.id)
                records = await engine.handle_deadline(playbook, deadline, current)
                self._plan(run, approvals, deadline.incident.id, "verify", records)

    async def _incidents(self, events: Sequence[Incident]) -> None:
        for incident in events:
            self._latest[incident.id] = incident
            self._track(incident)
            if not incident.notify:
                continue  # silenced or flapping: the worker runs no playbook either
            for (_, engine), run, approvals in zip(
                self.engines, self.result.runs, self._approval_steps, strict=True
            ):
                records = await engine.handle(incident, now=self.clock.now)
                self._plan(run, approvals, incident.id, incident.transition.value, records)

    def _plan(
        self,
        run: PlaybookSetRun,
        approvals: set[tuple[str, str]],
        incident_id: str,
        transition: str,
        records: Sequence[StepRecord],
    ) -> None:
        for record in records:
            run.steps.append(
                PlannedStep(
                    at=self.clock.now,
                    incident_id=incident_id,
                    transition=transition,
                    playbook=record.playbook,
                    step=record.step,
                    action=record.action,
                    outcome=record.outcome.value,
                    detail=record.detail,
                    params=dict(record.params),
                    requires_approval=(record.playbook, record.step) in approvals,
                )
            )

    def _track(self, incident: Incident) -> None:
        seen = self.result.incidents.get(incident.id)
        if seen is None:
            seen = self.result.incidents[incident.id] = IncidentSeen(
                id=incident.id,
                kind=incident.kind,
                subject=incident.subject,
                title=incident.title,
                opened_at=incident.first_seen,
                severity=incident.severity.value,
                status=incident.status.value,
                notified=incident.notify,
            )
        else:
            seen.events += 1
        if Severity(incident.severity).rank > Severity(seen.severity).rank:
            seen.severity = incident.severity.value
        seen.status = incident.status.value
        seen.resolved_at = incident.resolved_at
        seen.resolution = incident.resolution.value if incident.resolution else None
        seen.likely_cause = incident.likely_cause or seen.likely_cause


def _dry_engine(settings: Settings, directory: Path) -> PlaybookEngine:
    """An engine that renders and records every step and runs none."""
    context = ActionContext(
        default_channel=settings.slack_channel, dashboard_url=settings.slack_dashboard_url
    )
    engine = PlaybookEngine(
        default_registry(),
        context,
        None,  # steps done, and guardrail counters: in memory, on event time
        Guardrails(actions_enabled=settings.actions_enabled, dry_run=True, verify_dry_runs=True),
    )
    try:
        engine.load(directory)
    except PlaybookValidationError as exc:
        raise ConfigError(f"playbooks in {directory} are invalid:\n{exc}") from exc
    return engine

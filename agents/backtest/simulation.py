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

from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.backtest.sources import InputEvent
from agents.incidents.desk import IncidentDesk
from agents.incidents.manager import IncidentManager
from agents.incidents.silences import Silence
from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.settings import Settings
from fireline.detections import ChangeInput, DetectionInput, TickInput
from fireline.errors import ConfigError, PlaybookValidationError
from fireline.incident import Change, Incident, Severity
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.engine import Guardrails, PlaybookEngine
from playbooks.steps import Outcome, StepRecord

# A micro-batch: detectors cost least per sample fed many samples of a series at
# once. Its span only delays when the desk sees a batch's detections, never
# their times: inputs and lifecycle ticks are applied in event-time order.
BATCH_EVENTS = 8192
BATCH_SPAN_S = 60.0


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
    """Feeds events in event-time order and records incidents and the steps they would run."""

    def __init__(self, settings: Settings, playbook_dirs: Sequence[Path]) -> None:
        if not playbook_dirs:
            raise ConfigError("a backtest needs at least one playbooks directory")
        self.settings = settings
        policy = settings.incidents
        self.clock = _EventClock()
        self.desk = IncidentDesk(IncidentManager(policy), {}, _NoSilences(), self.clock)
        self.metrics = MetricPipeline(
            settings.detection, policy.signal_refresh_s, policy.evidence_points
        )
        self.predictions = PredictionPipeline(refresh_s=policy.signal_refresh_s)
        self.watch_predictions = settings.detection.watch_predictions
        self.tick_s = policy.tick_s
        self.engines = [(str(d), _dry_engine(settings, d)) for d in playbook_dirs]
        self.result = BacktestResult(runs=[PlaybookSetRun(label) for label, _ in self.engines])
        self._approval_steps = [
            {(p.name, s.label) for p in engine.playbooks for s in p.steps if s.require_approval}
            for _, engine in self.engines
        ]
        self._latest: dict[str, Incident] = {}  # incident id → its latest event
        self._next_tick: float | None = None
        self._metric_batch: list[MetricEvent] = []
        self._prediction_batch: list[PredictionEvent | LabelEvent] = []
        self._batch_start = 0.0

    async def run(self, events: AsyncIterable[InputEvent]) -> BacktestResult:
        """Feed every event, then let the timers run to the last event's time."""
        async for event in events:
            await self.feed(event)
        await self.finish()
        return self.result

    async def feed(self, event: InputEvent) -> None:
        """One event, in event-time order; detectors run per micro-batch."""
        result = self.result
        result.events += 1
        if result.first_event is None:
            result.first_event = event.timestamp
            self._next_tick = event.timestamp + self.tick_s
        result.last_event = event.timestamp
        pending = len(self._metric_batch) + len(self._prediction_batch)
        if pending and (
            pending >= BATCH_EVENTS or event.timestamp - self._batch_start >= BATCH_SPAN_S
        ):
            await self._flush()
        if not self._metric_batch and not self._prediction_batch:
            self._batch_start = event.timestamp
        if isinstance(event, MetricEvent):
            self._metric_batch.append(event)
        elif self.watch_predictions:
            self._prediction_batch.append(event)

    async def finish(self) -> None:
        """Detect on what is left and run the timers up to the last event."""
        await self._flush()
        if self.result.last_event is not None:
            await self._advance(self.result.last_event)

    async def _flush(self) -> None:
        metrics, self._metric_batch = self._metric_batch, []
        predictions, self._prediction_batch = self._prediction_batch, []
        detections = self.metrics.process(metrics) if metrics else []
        changes: list[Change] = []
        if predictions:
            found, changes = self.predictions.process(predictions)
            detections += found
        self.result.detections += sum(not d.cleared and not d.refresh for d in detections)
        # As the worker publishes them: a batch's changes before its detections, each
        # keyed by its subject; applied here in event time.
        inputs: list[tuple[float, int, bytes, bytes]] = [
            (c.at, 0, f"model:{c.model}".encode(), ChangeInput(change=c).model_dump_json().encode())
            for c in changes
        ]
        inputs += [
            (
                d.signal.at,
                1,
                d.subject_key.encode(),
                DetectionInput(detection=d).model_dump_json().encode(),
            )
            for d in detections
        ]
        inputs.sort(key=lambda item: (item[0], item[1]))
        for at, _, key, value in inputs:
            await self._advance(at)
            await self._incidents(self.desk.handle(key, value, 0))
        if metrics or predictions:
            last = max(e.timestamp for e in (*metrics, *predictions))
            await self._advance(last)

    async def _advance(self, to: float) -> None:
        """Run every tick and verify deadline up to event time ``to``."""
        tick = TickInput().model_dump_json().encode()
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

"""The worker's moving parts and the batch handlers the Faust consumer calls.

Handlers stay thin: validate (pure), dead-letter the bad records, hand the good
ones to the pipeline and the incident manager (pure), publish what comes out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from agents.incidents.approval_expiry import expired_now, too_late
from agents.incidents.desk import IncidentDesk
from agents.incidents.view import IncidentView
from agents.kafka.durable_table import partition_of
from agents.metrics import Metrics
from agents.pipelines.fast_events import (
    AnyLabelEvent,
    AnyPredictionEvent,
    FastLabelEvent,
    FastMetricEvent,
    FastPredictionEvent,
)
from agents.pipelines.ingest import DeadLetter, RawRecord, Validator
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.model_commands import ModelCommand, split_commands
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.service.action_requests import REQUEST_ADAPTER, ResumeRequest, RunRequest
from agents.service.incident_inputs import HandedInput, IncidentInputs, Written
from agents.settings import Settings
from agents.slack.thread_notes import ThreadNotes
from fireline.detections import ChangeInput, CommandInput, Detection, DetectionInput
from fireline.incident import Incident, Transition
from playbooks.approvals import CONTROL_ADAPTER, Decision, VerificationDue
from playbooks.chat.root_keeper import RootKeeper
from playbooks.engine import PlaybookEngine
from playbooks.step_retention import sweep
from playbooks.steps import StepRecord

log = logging.getLogger(__name__)

# Header names of dead letters, after Kafka Connect's __connect.errors.* convention.
DLQ_TOPIC = "fireline.error.topic"
DLQ_PARTITION = "fireline.error.partition"
DLQ_OFFSET = "fireline.error.offset"
DLQ_REASON = "fireline.error.reason"
DLQ_DETAIL = "fireline.error.detail"
DLQ_TRUNCATED = "fireline.error.truncated"  # original size, when the value was cut
# Producers refuse requests over 1 MiB by default: a dead letter must always fit.
DLQ_MAX_VALUE_BYTES = 512 * 1024
DLQ_MAX_KEY_BYTES = 64 * 1024
DLQ_KEY_TRUNCATED = "fireline.error.key-truncated"
STEP_PRUNE_EVERY_S = 600.0  # a sweep reads every step record of the partition


OutRecord = tuple[bytes | None, bytes, dict[str, bytes]]

# Incident events a new signal causes: their latency is fireline_detection_to_incident_seconds.
_RAISED_BY_A_SIGNAL = frozenset({Transition.OPENED, Transition.REOPENED, Transition.ESCALATED})


class Publisher(Protocol):
    """Sends records to Kafka; the Faust app provides the real one."""

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> Sequence[Written] | None:
        """Send (key, value, headers) records and wait until the broker has them all.

        Returns where each record was written, in order, when the publisher knows.
        """
        ...


class Runtime:
    """Everything one worker needs, handed in built (see agents.service.worker)."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        engine: PlaybookEngine,
        publisher: Publisher,
        *,
        view: IncidentView,
        desk: IncidentDesk,
        notes: ThreadNotes,
        roots: RootKeeper,
        pipeline: MetricPipeline,
        predictions: PredictionPipeline,
        owns_detections: Callable[[int], bool] = lambda _: False,
    ) -> None:
        """``desk`` applies inputs to incident state; ``view`` is what this worker has read.

        ``owns_detections(partition)``: whether this worker owns that partition of
        ``fireline.detections`` now; its own detections there are handed to the desk
        in-process (agents/service/incident_inputs.py).
        """
        self.settings = settings
        self.metrics = metrics
        self.engine = engine
        self.publisher = publisher
        self.view = view
        self.desk = desk
        self._last_prune: dict[int, float] = {}  # partition → wall time of its last sweep
        self.notes = notes
        self.roots = roots
        self.pipeline = pipeline
        self.predictions = predictions
        self.inputs = IncidentInputs(desk, self._publish_raised, owns_detections)
        limit = settings.max_event_bytes
        self._metric = Validator(FastMetricEvent, limit)
        self._prediction = Validator(FastPredictionEvent, limit)
        self._label = Validator(FastLabelEvent, limit)
        self._expired: set[str] = set()  # approvals whose expiry this worker published

    def handlers(self) -> dict[str, Any]:
        """Batch handler per input topic (incidents have an agent of their own)."""
        topics = self.settings.topics
        return {
            topics.metrics: self.on_metrics,
            topics.predictions: self.on_predictions,
            topics.labels: self.on_labels,
        }

    async def on_metrics(self, records: Sequence[RawRecord]) -> None:
        """Validate metric samples, run the detectors, publish incident events."""
        started = time.perf_counter()
        batch = self._metric.validate(records)
        await self._dead_letter(records, batch.dead)
        detections = self.pipeline.process(batch.events, records[0].partition)
        self._count(detections)
        await self._publish_detections(detections)
        self.metrics.series_tracked.set(len(self.pipeline.detectors))
        for reason, released in self.pipeline.take_evicted().items():
            if released:
                self.metrics.series_released.labels(reason).inc(released)
        self._observe(records, started)

    async def on_predictions(self, records: Sequence[RawRecord]) -> None:
        """Validate prediction logs, run the per-model-version detectors, publish findings.

        A human's command about a model (agents/pipelines/model_commands.py) applies
        where it stands among the predictions.
        """
        started = time.perf_counter()
        partition = records[0].partition
        for run, command in split_commands(records):
            if run:
                batch = self._prediction.validate(run)
                await self._dead_letter(run, batch.dead)
                await self._publish_findings(batch.events, partition)
            if command is not None:
                await self._apply_model_command(command, partition)
        self._observe(records, started)

    async def _apply_model_command(self, command: ModelCommand, partition: int) -> None:
        if not self.settings.detection.watch_predictions:
            return
        log.info("model %s v%s: accept asked by %s", command.model, command.version, command.by)
        detections = self.predictions.accept(command.model, command.version, partition)
        self._count(detections)
        await self._publish_detections(detections)

    async def on_labels(self, records: Sequence[RawRecord]) -> None:
        """Validate labels, join them to their predictions, watch the error rate."""
        started = time.perf_counter()
        batch = self._label.validate(records)
        await self._dead_letter(records, batch.dead)
        await self._publish_findings(batch.events, records[0].partition)
        self._observe(records, started)

    async def _publish_findings(
        self, events: Sequence[AnyPredictionEvent | AnyLabelEvent], partition: int
    ) -> None:
        if not events or not self.settings.detection.watch_predictions:
            return
        detections, changes = self.predictions.process(events, partition)
        self._count(detections)
        for (model, outcome), n in self.predictions.take_label_counts().items():
            self.metrics.label_joins.labels(model, outcome).inc(n)
        gauge = self.metrics.model_performance
        for model, version, metric, source, value in self.predictions.performance(
            {e.model for e in events}
        ):
            gauge.labels(model, version, metric, source).set(value)
        inputs: list[OutRecord] = [
            (f"model:{c.model}".encode(), ChangeInput(change=c).model_dump_json().encode(), {})
            for c in changes
        ]
        if inputs:
            await self.publisher.publish(self.settings.topics.detections, inputs)
        await self._publish_detections(detections)

    async def on_incident_input(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int | None = None
    ) -> None:
        """Apply one detection, change, tick or command to incident state; publish the events.

        ``offset``: the record's, in its partition of ``fireline.detections``; without
        it (tests) the input is applied with no once-only bookkeeping.
        """
        if offset is None:
            applied = self.desk.apply(key, value, partition)
            await self._publish_raised(applied.events)
            self.desk.store(applied)
            return
        await self.inputs.consumed(key, value, partition, offset)

    async def _publish_raised(self, incidents: Sequence[Incident]) -> None:
        """Publish incident events; observe the latency of those a new signal caused."""
        await self._publish_incidents(incidents)
        published = time.time()
        for incident in incidents:
            if incident.transition in _RAISED_BY_A_SIGNAL:
                # last_seen is the event time of the signal that caused this event
                self.metrics.detection_to_incident.observe(max(0.0, published - incident.last_seen))

    async def on_incident(self, value: bytes | None, where: str) -> None:
        """Hand one incident event to the owner of each playbook it matches; keep roots true.

        Silenced or flapping incidents are recorded but notify nobody: no playbook
        runs. Their roots, if fireline posted any, are still kept true (a
        ``chat.update`` notifies nobody). When playbooks match, their owners keep
        the roots after running them (see :meth:`on_action_request`), so a
        ``slack`` step replies in the thread before its root changes.
        """
        try:
            incident = Incident.model_validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed incident at %s: %s", where, exc)
            return
        if not incident.notify:
            reason = f"silenced by {incident.silenced_by}" if incident.silenced_by else "flapping"
            log.info("incident %s %s: %s, no playbooks", incident.id, incident.transition, reason)
            await self.roots.keep(incident)
            return
        matching = self.engine.matching(incident)
        if not matching:
            await self.roots.keep(incident)
            return
        now = time.time()
        log.info(
            "incident %s r%d %s: requesting %s",
            incident.id,
            incident.revision,
            incident.transition.value,
            ", ".join(playbook.name for playbook in matching),
        )
        await self.publisher.publish(
            self.settings.topics.action_requests,
            [
                (
                    playbook.name.encode(),
                    RunRequest(playbook=playbook.name, incident=incident, requested_at=now)
                    .model_dump_json()
                    .encode(),
                    {},
                )
                for playbook in matching
            ],
        )

    async def on_approval(self, value: bytes | None, where: str) -> None:
        """A human decided on a waiting step: tell the thread, hand it to the playbook's owner."""
        try:
            request = CONTROL_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed approval at %s: %s", where, exc)
            return
        if isinstance(request, VerificationDue):
            # Written by an earlier version; deadlines now live in the guardrails table.
            log.warning("ignoring a verification deadline record at %s", where)
            return
        if request.status is Decision.PENDING:
            return  # the request itself; it was announced when it was made
        request = too_late(request, self.settings.approval_ttl_s)
        log.info("approval %s %s by %s", request.id, request.status, request.decided_by)
        await self.notes.approval_decided(request)
        await self.publisher.publish(
            self.settings.topics.action_requests,
            [
                (
                    request.playbook.encode(),
                    ResumeRequest(approval=request).model_dump_json().encode(),
                    {},
                )
            ],
        )

    async def on_action_request(self, value: bytes | None, partition: int, where: str) -> None:
        """As the owner of a playbook: run it, resume it, or handle its deadlines that passed."""
        try:
            request = REQUEST_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed action request at %s: %s", where, exc)
            return
        if isinstance(request, RunRequest):
            incident = request.incident
            records = await self.engine.run_playbook(incident, request.playbook)
            log.info(
                "playbook %s for incident %s r%d (%s): %s",
                request.playbook,
                incident.id,
                incident.revision,
                where,
                ", ".join(f"{r.step} {r.outcome.value}" for r in records) or "nothing left to run",
            )
            await self.roots.keep(incident)
            await self._audit(incident, records)
        elif isinstance(request, ResumeRequest):
            approval = request.approval
            await self._audit(approval.incident, await self.engine.resume(approval))
        else:
            await self._handle_deadlines(partition, time.time())

    async def _handle_deadlines(self, partition: int, now: float) -> None:
        """Verify the remediations due in the playbooks ``partition`` owns."""
        count = self.settings.partitions
        owned = [
            key.decode()
            for key in self.engine.guards.all_keys()
            if partition_of(key, count) == partition
        ]
        self._prune_steps(partition, now)
        for playbook, deadline in self.engine.due(owned, now):
            current = self.view.incidents.get(deadline.incident.id)
            records = await self.engine.handle_deadline(playbook, deadline, current)
            await self._audit(deadline.incident, records)

    def _prune_steps(self, partition: int, now: float) -> None:
        """Now and then, tombstone the step records of ``partition``'s playbooks past retention."""
        if now - self._last_prune.get(partition, float("-inf")) < STEP_PRUNE_EVERY_S:
            return
        self._last_prune[partition] = now
        count = self.settings.partitions
        done = sweep(
            self.engine.done,
            lambda playbook: partition_of(playbook.encode(), count) == partition,
            now,
            self.settings.step_retention_s,
        )
        if done.pruned:
            self.metrics.step_records_pruned.inc(done.pruned)
            log.info("pruned %d playbook step records in partition %d", done.pruned, partition)

    async def _audit(self, incident: Incident, records: Sequence[StepRecord]) -> None:
        audit: list[OutRecord] = []
        requests: list[OutRecord] = []
        for record in records:
            self.metrics.actions.labels(record.action, record.outcome.value).inc()
            if record.attempts:
                self.metrics.action_seconds.labels(record.action).observe(record.duration_s)
            body = {
                "incident_id": incident.id,
                "revision": incident.revision,
                "transition": incident.transition.value,
                # Every field but the approval request (published on its own topic):
                # asdict would deep-copy its whole incident only to drop it.
                **{
                    f.name: getattr(record, f.name)
                    for f in dataclasses.fields(record)
                    if f.name != "approval"
                },
                "ok": record.ok,
            }
            if record.escalate:
                await self._escalate(incident, record)
            audit.append((incident.id.encode(), _json(body), {}))
            if record.approval is not None:
                request = record.approval
                requests.append((incident.id.encode(), request.model_dump_json().encode(), {}))
                await self.notes.announce_approval(request)
        if requests:
            await self.publisher.publish(self.settings.topics.approvals, requests)
        if audit:
            await self.publisher.publish(self.settings.topics.actions, audit)
        await self.notes.step_results(incident.id, list(records))

    async def expire_approvals(self, now: float, owned_partitions: set[int]) -> int:
        """Reject the owned approvals nobody decided in time; return how many."""
        if not self.view.loaded:
            return 0

        def owned(incident_id: str) -> bool:
            return self.view.partitions.get(incident_id) in owned_partitions

        expired = expired_now(self.view.approvals, self.settings.approval_ttl_s, now, owned)
        expired = [r for r in expired if r.id not in self._expired]
        if expired:
            self._expired.update(r.id for r in expired)  # once, until the view shows it
            await self.publisher.publish(
                self.settings.topics.approvals,
                [(r.incident.id.encode(), r.model_dump_json().encode(), {}) for r in expired],
            )
        return len(expired)

    async def remind_unacknowledged(self, now: float, owned_partitions: set[int]) -> int:
        """Remind the threads of critical incidents nobody acknowledged (owned ones only).

        Nothing until the view and the threads are replayed: a half-read view may
        still hold an old revision of an incident someone since acknowledged.
        """
        if not (self.view.loaded and self.notes.threads.loaded):
            return 0

        def owned(incident_id: str) -> bool:
            return self.view.partitions.get(incident_id) in owned_partitions

        return await self.notes.remind(self.view.incidents, now, owned)

    async def _escalate(self, incident: Incident, record: StepRecord) -> None:
        """Ask the incident's owner to escalate it (on_failure: escalate)."""
        command = CommandInput(
            command="escalate", incident_id=incident.id, by=f"playbook {record.playbook}"
        )
        await self.publisher.publish(
            self.settings.topics.detections,
            [(incident.subject_key.encode(), command.model_dump_json().encode(), {})],
        )

    def _count(self, detections: Sequence[Detection]) -> None:
        for detection in detections:
            if not detection.refresh:
                state = "cleared" if detection.cleared else "raised"
                self.metrics.detections.labels(detection.kind, state).inc()

    async def _publish_detections(self, detections: Sequence[Detection]) -> None:
        """Publish detections; hand those of partitions this worker owns to the desk at once."""
        if not detections:
            return
        records: list[OutRecord] = [
            (d.subject_key.encode(), DetectionInput(detection=d).model_dump_json().encode(), {})
            for d in detections
        ]
        written = await self.publisher.publish(self.settings.topics.detections, records)
        if written:
            handed = [
                HandedInput(where, key or b"", value)
                for where, (key, value, _) in zip(written, records, strict=True)
            ]
            await self.inputs.hand_over(handed)

    async def _publish_incidents(self, incidents: Sequence[Incident]) -> None:
        if not incidents:
            return
        for incident in incidents:
            self.metrics.incidents.labels(incident.kind, incident.transition.value).inc()
            log.warning(
                "incident %s %s: %s", incident.id, incident.transition.value, incident.title
            )
        await self.publisher.publish(
            self.settings.topics.incidents,
            [(i.id.encode(), i.model_dump_json().encode(), {}) for i in incidents],
        )

    async def _dead_letter(self, records: Sequence[RawRecord], dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        topic = records[0].topic
        for letter in dead:
            self.metrics.events_invalid.labels(topic, letter.reason).inc()
        await self.publisher.publish(
            self.settings.topics.dead_letter, [_dead_letter_record(d) for d in dead]
        )
        log.info("dead-lettered %d of %d events from %s", len(dead), len(records), topic)

    def _observe(self, records: Sequence[RawRecord], started: float) -> None:
        topic = records[0].topic
        self.metrics.events_consumed.labels(topic).inc(len(records))
        self.metrics.batch_size.labels(topic).observe(len(records))
        self.metrics.batch_seconds.labels(topic).observe(time.perf_counter() - started)
        self.metrics.last_event.labels(topic).set(time.time())


def _dead_letter_record(letter: DeadLetter) -> OutRecord:
    record = letter.record
    headers = {
        DLQ_TOPIC: record.topic.encode(),
        DLQ_PARTITION: str(record.partition).encode(),
        DLQ_OFFSET: str(record.offset).encode(),
        DLQ_REASON: letter.reason.encode(),
        DLQ_DETAIL: letter.detail.encode(),
    }
    value, key = record.value or b"", record.key
    if len(value) > DLQ_MAX_VALUE_BYTES:
        headers[DLQ_TRUNCATED] = str(len(value)).encode()
        value = value[:DLQ_MAX_VALUE_BYTES]
    if key is not None and len(key) > DLQ_MAX_KEY_BYTES:
        headers[DLQ_KEY_TRUNCATED] = str(len(key)).encode()
        key = key[:DLQ_MAX_KEY_BYTES]
    return key, value, headers


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()

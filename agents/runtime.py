"""The worker's moving parts and the batch handlers the Faust consumer calls.

Handlers stay thin: validate (pure), dead-letter the bad records, hand the good
ones to the pipeline and the incident manager (pure), publish what comes out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from agents.events import LabelEvent, MetricEvent, PredictionEvent
from agents.incidents import IncidentManager
from agents.ingest import DeadLetter, RawRecord, Validator
from agents.metrics import Metrics
from agents.pipeline import MetricPipeline
from agents.settings import Settings
from playbooks.engine import PlaybookEngine
from playbooks.incident import Incident

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


OutRecord = tuple[bytes | None, bytes, dict[str, bytes]]


class Publisher(Protocol):
    """Sends records to Kafka; the Faust app provides the real one."""

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        """Send (key, value, headers) records and wait until the broker has them all."""
        ...


@dataclass
class Runtime:
    """Everything one worker needs, built once from settings."""

    settings: Settings
    metrics: Metrics
    engine: PlaybookEngine
    publisher: Publisher
    pipeline: MetricPipeline = field(init=False)
    incidents: IncidentManager = field(default_factory=IncidentManager)

    def __post_init__(self) -> None:
        self.pipeline = MetricPipeline(self.settings.detection)
        limit = self.settings.max_event_bytes
        self._metric = Validator(MetricEvent, limit)
        self._prediction = Validator(PredictionEvent, limit)
        self._label = Validator(LabelEvent, limit)

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
        incidents = []
        for detection in self.pipeline.process(batch.events):
            self.metrics.detections.labels(
                detection.kind, "cleared" if detection.cleared else "raised"
            ).inc()
            incident = self.incidents.on_detection(detection)
            if incident is not None:
                incidents.append(incident)
        await self._publish_incidents(incidents)
        self.metrics.series_tracked.set(len(self.pipeline.detectors))
        if self.pipeline.unwatched:
            self.metrics.samples_unwatched.inc(self.pipeline.unwatched)
            self.pipeline.unwatched = 0
        self._observe(records, started)

    async def on_predictions(self, records: Sequence[RawRecord]) -> None:
        """Validate prediction logs (their detectors come with the detectors issue)."""
        started = time.perf_counter()
        batch = self._prediction.validate(records)
        await self._dead_letter(records, batch.dead)
        self._observe(records, started)

    async def on_labels(self, records: Sequence[RawRecord]) -> None:
        """Validate labels (the join to predictions comes with the detectors issue)."""
        started = time.perf_counter()
        batch = self._label.validate(records)
        await self._dead_letter(records, batch.dead)
        self._observe(records, started)

    async def on_incident(self, value: bytes | None, where: str) -> None:
        """Run the playbooks for one incident event and publish the action audit log."""
        try:
            incident = Incident.model_validate_json(value or b"")
        except ValidationError as exc:
            log.error("skipping malformed incident at %s: %s", where, exc)
            return
        audit: list[OutRecord] = []
        for result in await self.engine.handle(incident):
            self.metrics.actions.labels(result.action, "ok" if result.ok else "failed").inc()
            body = {
                "incident_id": incident.id,
                "transition": incident.transition.value,
                **dataclasses.asdict(result),
            }
            audit.append((incident.id.encode(), _json(body), {}))
        if audit:
            await self.publisher.publish(self.settings.topics.actions, audit)

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

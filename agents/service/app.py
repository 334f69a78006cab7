"""The Faust app: built by a factory, so importing this module connects to nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from agents.kafka import batching, state_ttl
from agents.kafka.detector_store import ChangelogRecord
from agents.kafka.durable_table import DurableTable, PartitionTable
from agents.kafka.offset_loss import OffsetLossReport
from agents.service.action_requests import TICK
from agents.service.checkpoints import ChangelogOutbox, SlicedCheckpoint
from agents.service.incident_inputs import HandedInput, Written
from agents.service.runtime import OutRecord, Runtime
from agents.settings import Settings
from fireline.detections import TickInput
from fireline.errors import BrokerError

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured for micro-batched ingestion."""
    w = settings.worker
    datadir = settings.data_dir / f"{settings.app_id}-data"
    datadir.mkdir(parents=True, exist_ok=True)  # Faust writes there but does not create it
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,  # fireline serves its own /metrics, /healthz and /readyz
        # Group-join latency: see docs/performance.md for why these matter.
        broker_session_timeout=w.session_timeout_s,
        broker_heartbeat_interval=w.heartbeat_interval_s,
        broker_rebalance_timeout=w.rebalance_timeout_s,
        stream_recovery_delay=0.0,
        # Faust's check that a changelog's end is not before the offset of the table's
        # own last write guards RocksDB files that outlived their topic. The tables
        # here are in memory (only this process's writes), and the embedded broker
        # (Tansu) reports a partition's end as its last record batch's base offset + 1:
        # a worker whose checkpoints went out in one batch crashed when the partition
        # came back to it in a rebalance (ConsistencyError). Not checked.
        recovery_consistency_check=False,
        # Throughput: fetch big, poll big, commit by time rather than per N events.
        broker_max_poll_records=w.max_poll_records,
        consumer_max_fetch_size=w.max_fetch_bytes,
        broker_commit_every=w.commit_every,
        broker_commit_interval=w.commit_interval_s,
        stream_wait_empty=False,
        # aiokafka's default batch (16 KiB) holds ~15 detector checkpoints: a
        # checkpoint of thousands of series took hundreds of round trips.
        producer_max_batch_size=w.producer_batch_bytes,
    )


# key, value, partition (None: the producer's partitioner), headers
_Send = tuple[bytes | None, bytes | None, int | None, dict[str, bytes]]


def _retriable(exc: BaseException) -> bool:
    """Whether sending again can help (a broker hiccup, not a record too large)."""
    while exc is not None:
        if isinstance(exc, KafkaError):
            return bool(exc.retriable)
        exc = exc.__cause__  # type: ignore[assignment]  # walk to the aiokafka error
    return True  # Faust's wrapper without a cause: assume transient


class FaustPublisher:
    """Publishes through the app's producer and waits for every broker ack.

    A failed send is retried with exponential backoff; when the broker stays
    unreachable the error propagates and stops the worker, since the batch can
    neither be acknowledged without its output nor skipped.
    """

    def __init__(self, app: faust.App, retries: int = 5, first_backoff_s: float = 0.5) -> None:
        self.app = app
        self.retries = retries
        self.first_backoff_s = first_backoff_s

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> list[Written]:
        """Send all records, then wait for all acks (one round trip per batch, not per record).

        Returns where the broker wrote each record, in order.
        """
        return await self._publish(topic, [(k, v, None, h) for k, v, h in records])

    async def write_changelog(self, topic: str, records: Sequence[ChangelogRecord]) -> None:
        """Send table changelog records to their partitions and wait for all acks."""
        await self._publish(topic, [(r.key, r.value, r.partition, {}) for r in records])

    async def _publish(self, topic: str, records: Sequence[_Send]) -> list[Written]:
        for attempt in range(self.retries + 1):
            try:
                return await self._send_all(topic, records)
            except (ProducerSendError, KafkaError) as exc:
                if attempt == self.retries or not _retriable(exc):
                    raise BrokerError(
                        f"cannot publish {len(records)} records to {topic} after "
                        f"{attempt + 1} attempt(s): {exc!r}"
                    ) from exc
                delay = self.first_backoff_s * 2**attempt
                log.warning("publish to %s failed (%r); retrying in %.1fs", topic, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send_all(self, topic: str, records: Sequence[_Send]) -> list[Written]:
        producer = self.app.producer
        futures: list[Any] = []
        for key, value, partition, headers in records:
            futures.append(
                await producer.send(
                    topic, key, value, partition, None, list(headers.items()) or None
                )
            )
        return [Written(m.partition, m.offset) for m in await asyncio.gather(*futures)]


def wire(app: faust.App, runtime: Runtime) -> None:
    """Subscribe the app to fireline's topics: input topics in batches, incidents per event.

    The playbooks run in an ordinary Faust agent, a task of its own: a slow Slack
    or webhook call holds up that agent's queue, never the metric hot path.
    Incidents are few, so the per-event path costs nothing that matters here.
    """
    settings = runtime.settings
    handlers = runtime.handlers()
    lost = OffsetLossReport(runtime.metrics.offsets_reset)
    batching.install(
        app,
        handlers,
        settings.worker.fetch_max_wait_ms,
        on_offset_lost=lost,
        fetch_min_bytes=settings.worker.fetch_min_bytes,
    )
    for name in handlers:
        app.topics.add(app.topic(name, partitions=settings.partitions))
    incidents = app.topic(settings.topics.incidents, partitions=settings.partitions)
    wire_incident_manager(app, runtime)
    wire_detector_state(app, runtime)

    approvals = app.topic(settings.topics.approvals, partitions=settings.partitions)
    _per_event_agent(app, approvals, "fireline-approvals", runtime.on_approval)
    _per_event_agent(app, incidents, "fireline-playbooks", runtime.on_incident)
    wire_action_owner(app, runtime)


def _per_event_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    handle: Callable[[bytes | None, str], Awaitable[None]],
) -> None:
    """An ordinary Faust agent calling ``handle(value, where)`` for each event, in order."""

    @app.agent(topic, name=name)
    async def agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await handle(event.value, f"{message.topic}[{message.partition}]@{message.offset}")


def wire_action_owner(app: faust.App, runtime: Runtime) -> None:
    """The owner of each playbook: an agent on ``fireline.action-requests`` (keyed by playbook).

    Ticks drive the deadlines (verify, approval expiry): each worker sends one to
    every partition of the topic it owns, so the owner handles them in order with
    the runs, inside the agent where the durable table writes belong.
    """
    settings = runtime.settings
    requests = app.topic(settings.topics.action_requests, partitions=settings.partitions)
    # partition → when its tick was sent, until the tick is handled: a slow step must not
    # pile ticks up behind it (one is resent if it went missing, e.g. in a rebalance).
    ticking: dict[int, float] = {}

    @app.agent(requests, name="fireline-actions")
    async def own_actions(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            if message.key is None:
                ticking.pop(message.partition, None)
            where = f"{message.topic}[{message.partition}]@{message.offset}"
            await runtime.on_action_request(message.value, message.partition, where)

    @app.timer(settings.incidents.tick_s)
    async def send_guard_ticks() -> None:
        now = time.monotonic()
        for partition in sorted(owned_partitions(app, settings.topics.action_requests)):
            if now - ticking.get(partition, -TICK_RESEND_S) < TICK_RESEND_S:
                continue
            ticking[partition] = now
            topic = settings.topics.action_requests
            await app.producer.send(topic, None, TICK, partition, None, None)


TICK_RESEND_S = 30.0
INCIDENT_TABLE = "incident-state"
STEPS_TABLE = "playbook-steps"
DETECTOR_TABLE = "detector-state"
GUARDRAILS_TABLE = "guardrails"


@dataclass(frozen=True)
class WorkerTables:
    """The worker's Faust tables; each survives restarts through its changelog topic.

    Keys and values are bytes (serialised raw, the app's default): the values
    are fireline's own JSON or checkpoints.
    """

    steps: DurableTable  # playbook steps done per incident event (acknowledged writes)
    incidents: PartitionTable  # subject key → incident state
    detectors: Any  # detector checkpoints; DetectorStore writes their changelog itself
    guardrails: DurableTable  # playbook name → its counters and deadlines


def create_tables(app: faust.App, settings: Settings) -> WorkerTables:
    """Declare the tables (``<app_id>-<name>-changelog``); Faust fills them once started."""

    def table(name: str) -> Any:
        return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)

    return WorkerTables(
        DurableTable(table(STEPS_TABLE)),
        PartitionTable(table(INCIDENT_TABLE)),
        table(DETECTOR_TABLE),
        DurableTable(table(GUARDRAILS_TABLE)),
    )


def wire_incident_manager(app: faust.App, runtime: Runtime) -> None:
    """The incident manager: an agent on the detections topic, state in the incident table.

    The worker's own detections skip the agent when it owns their partition
    (agents/service/incident_inputs.py); the agent applies the rest, in order.

    Ticks drive the timers (auto-resolve, expiry, flapping, silences): each worker
    sends one to every detections partition it owns, so the owner applies them in
    order with the detections (and hands them over in-process, like its own).
    """
    settings = runtime.settings
    detections = app.topic(settings.topics.detections, partitions=settings.partitions)
    tick = TickInput().model_dump_json().encode()

    @app.agent(detections, name="fireline-incidents")
    async def manage_incidents(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await runtime.on_incident_input(
                message.key, message.value, message.partition, message.offset
            )

    @app.on_partitions_revoked.connect
    async def on_revoked(*_: Any, **__: Any) -> None:
        await runtime.inputs.forget()  # after any hand-off in flight; the next owner resumes

    @app.timer(settings.incidents.tick_s)
    async def send_ticks() -> None:
        topic = settings.topics.detections
        futures = [
            await app.producer.send(topic, None, tick, partition, None, None)
            for partition in sorted(owned_partitions(app, topic))
        ]
        # Handed over like the worker's detections: applied now, and the records
        # after them can be handed over too, even while the consumer lags behind.
        written = [Written(m.partition, m.offset) for m in await asyncio.gather(*futures)]
        await runtime.inputs.hand_over(HandedInput(w, None, tick) for w in written)


def owned_partitions(app: faust.App, topic: str) -> set[int]:
    """The partitions of ``topic`` this worker owns (empty before the first assignment)."""
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


def wire_detector_state(app: faust.App, runtime: Runtime) -> None:
    """Checkpoint the detectors to their table now and then (see agents.kafka.detector_store).

    The store is deferred: its changelog records are sent straight to the
    producer, a slice at a time, and awaited, never queued in Faust's producer
    buffer (thousands every ``checkpoint_s``: the per-event agents waited for that
    buffer to ebb, holding up the fetch loop for seconds, and every acknowledged
    table write queued behind them).
    """
    settings = runtime.settings
    pipelines = (runtime.pipeline, runtime.predictions)
    store = runtime.pipeline.store

    async def flush_producer() -> None:
        await app.producer.flush()

    outbox = ChangelogOutbox(store, FaustPublisher(app).write_changelog, flush_producer)
    metric_checkpoint = SlicedCheckpoint(runtime.pipeline, outbox.write)

    async def checkpoint() -> int:
        saved = metric_checkpoint.flush() + runtime.predictions.checkpoint()
        await outbox.seal()
        return saved

    @app.timer(settings.detection.checkpoint_s)
    async def checkpoint_detectors() -> None:
        await metric_checkpoint.run()  # in slices: samples keep flowing meanwhile
        runtime.predictions.checkpoint()
        await outbox.seal()
        expired = runtime.pipeline.take_expired()
        if store is not None and expired:
            runtime.metrics.states_tombstoned.inc(state_ttl.tombstone(store.table, expired))

    @app.on_partitions_revoked.connect
    async def on_revoked(*_: Any, **__: Any) -> None:
        # Whoever gets these partitions next restores from the table: save first,
        # then forget, so this worker never writes stale state for them later.
        saved = await checkpoint()
        for pipeline in pipelines:
            pipeline.forget()
        log.info("rebalance: checkpointed %d detectors and released them", saved)

    @app.on_before_shutdown.connect
    async def on_shutdown(*_: Any, **__: Any) -> None:
        log.info("shutdown: checkpointed %d detectors", await checkpoint())

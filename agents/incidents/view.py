"""Every worker's read model of all incidents and silences, folded from their topics.

Incident state is owned partition by partition, but the API must answer for
all of them: each worker follows every partition of ``fireline.incidents`` and
``fireline.silences`` from the beginning (no consumer group) and keeps the
latest revision of each incident and the current silences. The same consumer
replays other state topics for their owners (the chat threads), telling each
when it has caught up with where the topic was at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from agents.incidents.silences import Silence
from fireline.errors import BrokerError
from fireline.incident import Incident, Severity
from playbooks.approvals import CONTROL_ADAPTER, ApprovalRequest, Decision

log = logging.getLogger(__name__)


class IncidentView:
    """Latest incidents by id and current silences; resolved incidents are capped."""

    def __init__(self, max_resolved: int = 10_000) -> None:
        self.incidents: dict[str, Incident] = {}
        self.silences: dict[str, Silence] = {}
        self.approvals: dict[str, ApprovalRequest] = {}  # latest state by id
        self.partitions: dict[str, int] = {}  # incident id → its partition of the topic
        self.loaded = False  # the topics were read up to their end as of the worker's start
        self.max_resolved = max_resolved
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self._changed: asyncio.Condition | None = None  # made in the loop that uses it

    def open_by_severity(self) -> dict[str, int]:
        """How many incidents are open (or acknowledged), per severity."""
        counts = {severity.value: 0 for severity in Severity}
        for incident in self.incidents.values():
            if incident.is_open:
                counts[incident.severity.value] += 1
        return counts

    def silence_list(self) -> list[Silence]:
        """All known silences."""
        return list(self.silences.values())

    def apply_incident(self, value: bytes | None, partition: int | None = None) -> None:
        """Fold one incident event (older revisions than the one held are ignored)."""
        try:
            incident = Incident.model_validate_json(value or b"")
        except ValidationError as exc:
            log.error("incident view: skipping malformed incident event: %s", exc)
            return
        held = self.incidents.get(incident.id)
        if held is not None and held.revision >= incident.revision:
            return
        self.incidents[incident.id] = incident
        if partition is not None:
            self.partitions[incident.id] = partition
        if incident.is_open:
            self._resolved.pop(incident.id, None)
        else:
            self._resolved[incident.id] = None
            while len(self._resolved) > self.max_resolved:
                oldest, _ = self._resolved.popitem(last=False)
                self.incidents.pop(oldest, None)
                self.partitions.pop(oldest, None)

    def apply_silence(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one silence record; an empty value removes the silence named by the key."""
        if not value:
            if key is not None:
                self.silences.pop(key.decode(errors="replace"), None)
            return
        try:
            silence = Silence.model_validate_json(value)
        except ValidationError as exc:
            log.error("incident view: skipping malformed silence: %s", exc)
            return
        self.silences[silence.id] = silence

    def apply_approval(self, value: bytes | None) -> None:
        """Fold one approval request or decision (a decision is never undone by a request)."""
        try:
            request = CONTROL_ADAPTER.validate_json(value or b"")
        except ValidationError as exc:
            log.error("incident view: skipping malformed approval: %s", exc)
            return
        if not isinstance(request, ApprovalRequest):
            return  # a verification deadline: nothing to show
        held = self.approvals.get(request.id)
        if held is not None and held.status is not Decision.PENDING:
            return
        self.approvals[request.id] = request

    async def notify(self) -> None:
        """Wake everyone waiting for a change."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()`` holds (checked after each change), up to ``timeout``."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        condition = self._changed
        try:
            async with condition:
                await asyncio.wait_for(condition.wait_for(ready), timeout)
        except TimeoutError:
            return ready()
        return True


class StateTopic(NamedTuple):
    """One more topic to follow from the beginning: each record's value goes to ``apply``.

    ``loaded`` is called once the topic has been read up to its end as of the start.
    """

    name: str
    apply: Callable[[bytes | None, bytes | None], None]  # (key, value)
    loaded: Callable[[], None]


class ViewFollower(mode.Service):
    """Feeds the view from the incidents and silences topics for the worker's lifetime."""

    def __init__(
        self,
        view: IncidentView,
        bootstrap_servers: str,
        incidents_topic: str,
        silences_topic: str,
        approvals_topic: str | None = None,
        state_topics: Sequence[StateTopic] = (),
        **kwargs: Any,
    ) -> None:
        self.view = view
        self.bootstrap_servers = bootstrap_servers
        self.incidents_topic = incidents_topic
        self.silences_topic = silences_topic
        self.approvals_topic = approvals_topic
        self.state_topics = {t.name: t for t in state_topics}
        self._consumer: AIOKafkaConsumer | None = None
        self._loading: dict[TopicPartition, int] = {}  # partitions → end offset at start
        self._unloaded: set[str] = set()  # topics not read up to there yet
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Assign every partition of the topics, from the beginning."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = []
        topics = [self.incidents_topic, self.silences_topic, *self.state_topics]
        if self.approvals_topic is not None:
            topics.append(self.approvals_topic)
        for topic in topics:
            for number in sorted(await _partitions_of(consumer, topic)):
                partitions.append(TopicPartition(topic, number))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._unloaded = set(topics)
        self._loading = dict(await consumer.end_offsets(partitions))
        await self._check_loaded(consumer)
        self.add_future(self._follow(consumer))

    async def on_stop(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if tp.topic == self.incidents_topic:
                        self.view.apply_incident(record.value, tp.partition)
                    elif tp.topic == self.approvals_topic:
                        self.view.apply_approval(record.value)
                    elif tp.topic in self.state_topics:
                        self.state_topics[tp.topic].apply(record.key, record.value)
                    else:
                        self.view.apply_silence(record.key, record.value)
            if self._unloaded:
                await self._check_loaded(consumer)
            if batches:
                await self.view.notify()

    async def _check_loaded(self, consumer: AIOKafkaConsumer) -> None:
        """Tell each state topic, and then the view, once they reached their end at start."""
        for tp, end in list(self._loading.items()):
            if await consumer.position(tp) >= end:
                del self._loading[tp]
        for name in list(self._unloaded):
            if not any(tp.topic == name for tp in self._loading):
                self._unloaded.discard(name)
                if name in self.state_topics:
                    self.state_topics[name].loaded()
        if not self._unloaded and not self.view.loaded:
            self.view.loaded = True
            log.info("incident view replayed: %d incidents", len(self.view.incidents))


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):  # metadata may lag a freshly created topic
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer.topics()  # refreshes the cluster metadata
        await asyncio.sleep(0.1)
    raise BrokerError(f"topic {topic} has no partitions; was it created?")

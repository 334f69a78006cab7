"""``fireline_consumer_lag{topic,partition}``: how far the worker's consumer group is behind.

For each partition this worker owns (actively, of the topics it consumes), the lag
is the partition's end offset minus the group's committed offset: records the
broker holds that the group has not finished with. A partition the group never
committed starts at its log start (fireline consumes from "earliest"), so its lag
counts from there.

Refreshed by a timer, reported on scrape. ``collect()`` runs inside the /metrics
handler, on the event loop, and cannot await the broker; so a worker timer asks
for the offsets every few seconds (one OffsetFetch per partition and a ListOffsets
per leader, on the consumer's own connections, bounded by a timeout) and each
scrape reports the latest answer. The broker's load then does not depend on how
often, or by how many Prometheus servers, the worker is scraped, and a broker
that is slow to answer never slows a scrape.

On the embedded Tansu broker a partition's end offset is its last *batch's* base
offset + 1 (50 one-record batches then one batch of 1,000 records: 51, not
1,050), so there the lag under-reports by up to one producer batch, and a
committed offset past that end counts as 0. Real Kafka is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Protocol, cast

from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agents.kafka.faust_seam import PartitionOffsets, SeamConsumer

log = logging.getLogger(__name__)


def lag(offsets: PartitionOffsets) -> int:
    """Records from where the group resumes to the end (never negative).

    >>> lag(PartitionOffsets(start=0, end=120, committed=100))
    20
    >>> lag(PartitionOffsets(start=40, end=120, committed=None))  # resumes at the log start
    80
    >>> lag(PartitionOffsets(start=0, end=51, committed=1050))  # Tansu: end of the last batch
    0
    """
    resume = offsets.start if offsets.committed is None else offsets.committed
    return max(0, offsets.end - resume)


class OffsetReader(Protocol):
    """Which partitions the worker owns, and their offsets."""

    def owned(self) -> set[TP]:
        """The partitions to report: actively owned, of the consumed topics."""
        ...

    async def offsets(self, partitions: Collection[TP]) -> Mapping[TP, PartitionOffsets]:
        """The broker's offsets of ``partitions`` for the worker's group."""
        ...


class GroupOffsets:
    """An OffsetReader over a running Faust app with fireline's consumer (see faust_seam)."""

    def __init__(self, app: Any, topics: Iterable[str], timeout_s: float) -> None:
        """``topics``: the ones the worker consumes with commits (not tables' changelogs)."""
        self.app = app
        self.topics = frozenset(topics)
        self.timeout_s = timeout_s

    def owned(self) -> set[TP]:
        """The actively assigned partitions of ``topics`` (Faust's public assignor view)."""
        return {tp for tp in self.app.assignor.assigned_actives() if tp.topic in self.topics}

    async def offsets(self, partitions: Collection[TP]) -> Mapping[TP, PartitionOffsets]:
        """Asked through the consumer's own connections, bounded by ``timeout_s``."""
        consumer = cast(SeamConsumer, self.app.consumer)
        return await consumer.partition_offsets(partitions, self.timeout_s)


class ConsumerLag(Collector):
    """A Prometheus collector of the lag of the owned partitions, as last refreshed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lags: dict[TP, int] = {}

    @property
    def lags(self) -> Mapping[TP, int]:
        """The lag of each partition at the last refresh."""
        return dict(self._lags)

    async def refresh(self, reader: OffsetReader) -> bool:
        """Ask for the owned partitions' offsets; return whether the broker answered.

        When it does not, the last values stay (only for still-owned partitions) and
        the failure is logged: the worker's readiness and logs say why.
        """
        owned = reader.owned()
        if not owned:
            self._lags = {}
            return True
        try:
            offsets = await reader.offsets(owned)
        except (KafkaError, TimeoutError, ConsumerNotStarted) as exc:
            log.warning("consumer lag not refreshed: %r", exc)
            self._lags = {tp: n for tp, n in self._lags.items() if tp in owned}
            return False
        self._lags = {tp: lag(offsets[tp]) for tp in owned if tp in offsets}
        return True

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The family without samples, so registering it does not collect."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The lags of the last refresh (no I/O: this runs inside a scrape)."""
        family = self._family()
        for tp, value in sorted(self._lags.items()):
            family.add_metric([tp.topic, str(tp.partition)], value)
        yield family

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.name,
            "Records of an owned partition not yet committed by the consumer group "
            "(end offset minus committed offset; see agents/kafka/lag.py for Tansu's caveat).",
            labels=["topic", "partition"],
        )

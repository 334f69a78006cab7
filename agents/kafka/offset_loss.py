"""Loud reports of a consumer position the broker no longer has (``fireline_offsets_reset_total``).

A group's committed offset, once there, stays there, and it never lies past
the log's end. When either stops being true the broker lost data under the
group: a memory-only broker restarted (its log and the group's offsets both
gone), a log was truncated or deleted by retention before the group read it. Kafka clients then quietly start over from the log start
("earliest"): what was in between is lost or read again without a word, and
Faust, which keeps its own copy of the committed offset, would go on ignoring
the acknowledgements of every new record below the old offset. fireline says so
instead: one ERROR line per partition, naming it, and a counter an alert can
watch. agents/kafka/faust_seam.py finds the cases; this module reports them.
"""

from __future__ import annotations

import logging

from faust.types import TP
from prometheus_client import Counter

log = logging.getLogger(__name__)


class OffsetLossReport:
    """Logs and counts each partition whose position the broker lost."""

    def __init__(self, counter: Counter) -> None:
        """``counter``: labelled by topic and partition."""
        self.counter = counter

    def __call__(self, tp: TP, had: int, now: int | None) -> None:
        """``had``: the offset this worker held for ``tp``; ``now``: what the broker says.

        ``now`` is None when the broker has no committed offset at all, or when a
        fetch from ``had`` was refused as out of range (the log ends before it).
        """
        if now is None:
            what = "is gone (the broker has no committed offset, or the log ends before it)"
        else:
            what = f"went back to {now}"
        log.error(
            "offsets lost on topic %s partition %d: the consumer group's position %d %s. "
            "The broker lost this partition's log or the group's offsets (a memory-only "
            "broker restarted? retention deleted unread records?); consuming resumes from "
            "where the broker says, and records between may have been lost or be read again",
            tp.topic,
            tp.partition,
            had,
            what,
        )
        self.counter.labels(tp.topic, str(tp.partition)).inc()

"""Which chat message is each incident's thread root, per channel, durably.

Every change (a root posted, a reminder sent, an approval request posted) is kept in memory and, when the
worker gives the store a publisher, published as one record per incident (all
its channels) to a compacted topic (``fireline.chat-threads``), keyed by the
incident id. Every worker follows that topic back into its store, so after a
restart or a rebalance the new owner of an incident replies in the thread the
old one started, and any worker can find a thread to announce in. A record older
than the one held (each incident's records carry a version that every change
raises by one) is ignored, so the follower's echo never undoes a later local
change. Resolved incidents' records age out of the topic (compact plus delete,
30 days), so a worker's replay stays short.

Each root also records what it shows: the incident revision it was last
written from and its links, so :mod:`playbooks.chat.root_keeper` rewrites it
once per transition, whichever worker handles it. Records written before those
fields existed load as "shows revision 0, no links".

Memory is bounded: beyond ``limit`` incidents the least recently changed are
forgotten (their next event would post a fresh root).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from playbooks.chat.blocks import Links
from playbooks.chat.sinks import MessageRef

log = logging.getLogger(__name__)

MAX_THREADS = 10_000

Publish = Callable[[bytes, bytes], Awaitable[None]]


@dataclass(frozen=True)
class ThreadRoot:
    """Where an incident's thread is in one channel.

    ``ref`` is the incident's head message (rewritten in place as its status
    changes); replies go under ``thread_ts``. They are the same message unless
    the incident joined a related incident's thread, where its head is a reply.
    ``shown_revision`` is the incident revision the head was last written from
    (0: unknown, a record older than the field); ``links`` are the ones it was
    posted with, kept on every rewrite.
    """

    channel: str  # as the playbook names it (the lookup key); ref.channel is Slack's id
    ref: MessageRef
    thread_ts: str
    posted_at: float
    nudged_at: float | None = None  # the latest reminder, escalation or reopening
    reminders: int = 0
    shown_revision: int = 0
    links: Links = field(default_factory=Links)

    @property
    def thread(self) -> MessageRef:
        """The thread's root message, to reply under."""
        return MessageRef(self.ref.channel, self.thread_ts)

    @property
    def joined(self) -> bool:
        """Whether this thread is a related incident's."""
        return self.thread_ts != self.ref.ts

    @property
    def last_nudged_at(self) -> float:
        """When the channel was last called to it: the root, or a later reminder or escalation."""
        return self.nudged_at if self.nudged_at is not None else self.posted_at


@dataclass(frozen=True)
class _Entry:
    roots: dict[str, ThreadRoot]
    version: int  # grows with every change any worker publishes for the incident
    approvals: dict[str, MessageRef] = field(default_factory=dict)  # undecided requests' messages


class ThreadStore:
    """incident id → channel → its :class:`ThreadRoot`."""

    def __init__(
        self, limit: int = MAX_THREADS, publish: Publish | None = None, replayed: bool = False
    ) -> None:
        """``replayed``: a follower will replay the topic (``apply``, then ``mark_loaded``)."""
        self.limit = limit
        self.publish = publish
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loaded = asyncio.Event()
        if not replayed:
            self._loaded.set()  # nothing to wait for

    def get(self, incident_id: str, channel: str) -> ThreadRoot | None:
        """The root of ``incident_id`` in ``channel``, if one was posted."""
        entry = self._entries.get(incident_id)
        return entry.roots.get(channel) if entry is not None else None

    def roots_of(self, incident_id: str) -> list[ThreadRoot]:
        """Every channel's root of ``incident_id``, oldest first."""
        entry = self._entries.get(incident_id)
        return sorted(entry.roots.values(), key=lambda r: r.posted_at) if entry else []

    def any_thread(self, incident_id: str) -> MessageRef | None:
        """The latest thread of ``incident_id`` (for announcements), if any."""
        roots = self.roots_of(incident_id)
        return roots[-1].thread if roots else None

    def items(self) -> list[tuple[str, ThreadRoot]]:
        """Every (incident id, root) held."""
        return [(i, r) for i, e in self._entries.items() for r in e.roots.values()]

    async def remember(self, incident_id: str, root: ThreadRoot) -> None:
        """Record ``root`` (replacing the one of its channel) and publish the incident's roots.

        A failed publish is logged: the root still holds in this worker's memory.
        """
        held = self._entries.get(incident_id)
        roots = {**held.roots, root.channel: root} if held else {root.channel: root}
        await self._change(incident_id, held, roots, held.approvals if held else {})

    def approval_message(self, incident_id: str, approval_id: str) -> MessageRef | None:
        """Where the request for ``approval_id`` was posted, while it is undecided."""
        entry = self._entries.get(incident_id)
        return entry.approvals.get(approval_id) if entry else None

    async def remember_approval(self, incident_id: str, approval_id: str, ref: MessageRef) -> None:
        """Record where an approval request was posted (to rewrite it once decided)."""
        held = self._entries.get(incident_id)
        approvals = {**(held.approvals if held else {}), approval_id: ref}
        await self._change(incident_id, held, held.roots if held else {}, approvals)

    async def forget_approval(self, incident_id: str, approval_id: str) -> None:
        """The request was decided and its message rewritten."""
        held = self._entries.get(incident_id)
        if held is not None and approval_id in held.approvals:
            approvals = {k: v for k, v in held.approvals.items() if k != approval_id}
            await self._change(incident_id, held, held.roots, approvals)

    async def _change(
        self,
        incident_id: str,
        held: _Entry | None,
        roots: dict[str, ThreadRoot],
        approvals: dict[str, MessageRef],
    ) -> None:
        entry = _Entry(roots, held.version + 1 if held else 1, approvals)
        self._put(incident_id, entry)
        if self.publish is not None:
            try:
                await self.publish(incident_id.encode(), _encode(incident_id, entry))
            except Exception as exc:  # noqa: BLE001 - the thread works on; only durability is lost
                log.warning("could not record the chat thread of %s: %r", incident_id, exc)

    async def nudged(self, incident_id: str, root: ThreadRoot, now: float) -> None:
        """The channel was called to the incident (an escalation): reminders count from now."""
        current = self.get(incident_id, root.channel) or root
        await self.remember(incident_id, replace(current, nudged_at=now))

    async def reminded(self, incident_id: str, root: ThreadRoot, now: float) -> None:
        """Count one reminder sent in ``root``'s thread (on top of what is held by now)."""
        current = self.get(incident_id, root.channel) or root
        await self.remember(
            incident_id, replace(current, nudged_at=now, reminders=current.reminders + 1)
        )

    async def shown(self, incident_id: str, channel: str, revision: int) -> None:
        """The root in ``channel`` was rewritten from ``revision`` of the incident."""
        current = self.get(incident_id, channel)
        if current is not None and revision > current.shown_revision:
            await self.remember(incident_id, replace(current, shown_revision=revision))

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of the threads topic: an older version than the one held is ignored.

        An empty value (a tombstone) forgets the incident named by the key.
        """
        if not value:
            if key is not None:
                self._entries.pop(key.decode(errors="replace"), None)
            return
        try:
            incident_id, entry = _decode(value)
        except Exception as exc:  # noqa: BLE001 - a bad record must not stop the follower
            log.error("chat threads: skipping a malformed record: %r", exc)
            return
        held = self._entries.get(incident_id)
        if held is None or entry.version >= held.version:
            self._put(incident_id, entry)

    @property
    def loaded(self) -> bool:
        """Whether the topic has been replayed (or there is none to replay)."""
        return self._loaded.is_set()

    def mark_loaded(self) -> None:
        """The topic has been read up to where it was when the worker started."""
        if not self._loaded.is_set():
            log.info("chat threads replayed: %d incidents", len(self._entries))
        self._loaded.set()

    async def wait_loaded(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until the topic is replayed; False if it was not in time.

        Waits once: after a timeout the store counts as loaded, so a stuck replay
        delays one message, not every one.
        """
        if self._loaded.is_set():
            return True
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            log.warning("chat threads not replayed within %.0fs; going on without", timeout)
            self._loaded.set()
            return False
        return True

    def _put(self, incident_id: str, entry: _Entry) -> None:
        self._entries[incident_id] = entry
        self._entries.move_to_end(incident_id)
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _encode(incident_id: str, entry: _Entry) -> bytes:
    roots = [
        {**asdict(r), "ref": {"channel": r.ref.channel, "ts": r.ref.ts}}
        for r in entry.roots.values()
    ]
    approvals = {k: {"channel": v.channel, "ts": v.ts} for k, v in entry.approvals.items()}
    body = {
        "incident_id": incident_id,
        "version": entry.version,
        "roots": roots,
        "approvals": approvals,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(value: bytes) -> tuple[str, _Entry]:
    body: dict[str, Any] = json.loads(value)
    roots = {}
    for raw in body["roots"]:
        ref = MessageRef(str(raw["ref"]["channel"]), str(raw["ref"]["ts"]))
        root = ThreadRoot(
            channel=str(raw["channel"]),
            ref=ref,
            thread_ts=str(raw["thread_ts"]),
            posted_at=float(raw["posted_at"]),
            nudged_at=None if raw.get("nudged_at") is None else float(raw["nudged_at"]),
            reminders=int(raw.get("reminders", 0)),
            shown_revision=int(raw.get("shown_revision", 0)),
            links=_decode_links(raw.get("links")),
        )
        roots[root.channel] = root
    approvals = {
        str(k): MessageRef(str(v["channel"]), str(v["ts"]))
        for k, v in body.get("approvals", {}).items()
    }
    return str(body["incident_id"]), _Entry(roots, int(body["version"]), approvals)


def _decode_links(raw: Any) -> Links:
    if raw is None:
        return Links()
    runbook, dashboard = raw.get("runbook"), raw.get("dashboard")
    return Links(
        None if runbook is None else str(runbook), None if dashboard is None else str(dashboard)
    )

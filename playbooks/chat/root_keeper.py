"""Keeps every root message fireline posted showing its incident's current state.

Playbooks decide what to say and do; once fireline has posted an incident's
root (its head message in a channel), keeping it true is fireline's job, not a
playbook's. The worker calls :meth:`RootKeeper.keep` for every incident event
it owns, whether or not a playbook matched it, and each of the incident's roots
(one per channel) is rewritten in place when the event changes what a root
shows: its status (acknowledged by, resolved by, resolution) or severity.

Exactly once per transition: each :class:`~playbooks.chat.threads.ThreadRoot`
records the incident revision it was last written from, durably on the
chat-threads topic, and a root is rewritten only from a newer revision. So a
redelivered event, the ``slack`` step that already rewrote its root for this
event, and a restarted or second worker (which replays that topic first) all
find the root current. The gaps, each costing one repeated rewrite with the
same content: a worker that stops between ``chat.update`` and the record
reaching the topic, and a new owner after a rebalance that handles a redelivered
event before its follower has read the old owner's last record.
"""

from __future__ import annotations

import logging

from fireline.errors import ActionError
from fireline.incident import Incident, Transition
from playbooks.chat.blocks import root_message
from playbooks.chat.sinks import ChatSink
from playbooks.chat.threads import ThreadRoot, ThreadStore

log = logging.getLogger(__name__)

# After a restart the threads topic is replayed first, so that the roots a
# running incident already has are known (waited for once, then given up).
THREADS_LOAD_WAIT_S = 15.0

# The transitions that change what a root shows. An update (another signal, a
# silence) changes only the detection count, which the next of these brings up
# to date: rewriting on every update would spend the channel's rate on noise.
ROOT_TRANSITIONS = frozenset(
    {Transition.ACKNOWLEDGED, Transition.RESOLVED, Transition.ESCALATED, Transition.REOPENED}
)


def needs_rewrite(root: ThreadRoot, incident: Incident) -> bool:
    """Whether this event of ``incident`` changes what ``root`` shows and is newer than it."""
    return incident.transition in ROOT_TRANSITIONS and incident.revision > root.shown_revision


class RootKeeper:
    """Rewrites an incident's roots in place when its status or severity changed."""

    def __init__(
        self,
        sink: ChatSink | None,
        threads: ThreadStore,
        load_wait_s: float = THREADS_LOAD_WAIT_S,
    ) -> None:
        """``sink`` None: no chat is configured, there is nothing to keep."""
        self.sink = sink
        self.threads = threads
        self.load_wait_s = load_wait_s

    async def keep(self, incident: Incident) -> int:
        """Rewrite each of the incident's roots that is behind this event; return how many.

        A failed rewrite is logged and left behind (the next transition brings it
        up to date); it never fails the event.
        """
        if self.sink is None or incident.transition not in ROOT_TRANSITIONS:
            return 0
        await self.threads.wait_loaded(self.load_wait_s)
        rewritten = 0
        for root in self.threads.roots_of(incident.id):
            try:
                rewritten += await self._rewrite(incident, root)
            except ActionError as exc:
                log.warning(
                    "could not update the root message of %s in %s: %s",
                    incident.id,
                    root.channel,
                    exc,
                )
        return rewritten

    async def keep_root(self, incident: Incident, channel: str) -> bool:
        """Rewrite the incident's root in ``channel`` if it is behind; True if it was.

        Raises ActionError when Slack refused the rewrite.
        """
        root = self.threads.get(incident.id, channel)
        if self.sink is None or root is None:
            return False
        return await self._rewrite(incident, root)

    async def _rewrite(self, incident: Incident, root: ThreadRoot) -> bool:
        assert self.sink is not None, "checked by the callers"
        if not needs_rewrite(root, incident):
            return False
        await self.sink.update(root.ref, root_message(incident, root.links))
        await self.threads.shown(incident.id, root.channel, incident.revision)
        return True

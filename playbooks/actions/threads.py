"""Which chat message is each incident's thread root, per channel.

Kept in the worker's memory (bounded, oldest forgotten first): after a restart,
or when another worker takes the incident's partition over, the next event of an
incident posts a fresh root message (with the current status) and threads under it.
"""

from __future__ import annotations

from collections import OrderedDict

from playbooks.actions.chat import MessageRef

MAX_THREADS = 10_000


class ThreadStore:
    """(incident id, channel) → the root message's reference."""

    def __init__(self, limit: int = MAX_THREADS) -> None:
        self.limit = limit
        self._roots: OrderedDict[tuple[str, str], MessageRef] = OrderedDict()

    def get(self, incident_id: str, channel: str) -> MessageRef | None:
        """The root of ``incident_id`` in ``channel``, if this worker posted one."""
        return self._roots.get((incident_id, channel))

    def put(self, incident_id: str, channel: str, ref: MessageRef) -> None:
        """Remember a root; forget the oldest beyond ``limit``."""
        self._roots[(incident_id, channel)] = ref
        self._roots.move_to_end((incident_id, channel))
        while len(self._roots) > self.limit:
            self._roots.popitem(last=False)

    def any_root(self, incident_id: str) -> MessageRef | None:
        """Some root of ``incident_id`` (the latest posted), for announcements."""
        for (known, _), ref in reversed(self._roots.items()):
            if known == incident_id:
                return ref
        return None

    def __len__(self) -> int:
        return len(self._roots)

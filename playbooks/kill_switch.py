"""The runtime kill switch: pause and resume all actions, or one playbook's, fleet-wide.

A :class:`Pause` record per scope (``*`` for every playbook, else a playbook's
name) is published to the compacted ``fireline.action-controls`` topic, keyed
by scope; every worker folds the topic into its :class:`KillSwitch` (like the
silences), so a pause holds on every worker and survives restarts. The latest
record of a scope wins; ``paused: false`` is a resume (kept, so the status
says who resumed).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

ALL = "*"


class Pause(BaseModel):
    """One scope's switch: who set it, when, and why."""

    model_config = ConfigDict(frozen=True)

    scope: str = Field(min_length=1, max_length=200, description="'*' or a playbook's name.")
    paused: bool
    by: str = Field(min_length=1, max_length=200)
    at: float
    reason: str = Field(default="", max_length=1000)

    def describe(self) -> str:
        """What the held step's record says."""
        what = "all actions" if self.scope == ALL else f"playbook {self.scope}"
        why = f": {self.reason}" if self.reason else ""
        return f"paused: {what} paused by {self.by}{why}"


class KillSwitch:
    """The folded switches; ``held(playbook)`` says why a step must not act, or None."""

    def __init__(self) -> None:
        self.switches: dict[str, Pause] = {}
        self.loaded = False  # the topic was read up to its end as of the worker's start

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of the controls topic (an empty value forgets the scope)."""
        if not value:
            if key is not None:
                self.switches.pop(key.decode(errors="replace"), None)
            return
        try:
            pause = Pause.model_validate_json(value)
        except ValidationError as exc:
            log.error("kill switch: skipping a malformed control record: %s", exc)
            return
        self.switches[pause.scope] = pause

    def mark_loaded(self) -> None:
        """The topic has been replayed."""
        self.loaded = True

    def held(self, playbook: str) -> str | None:
        """Why ``playbook``'s actions are paused (all first), or None when they may run.

        >>> switch = KillSwitch()
        >>> switch.apply(b"rollback", b'{"scope":"rollback","paused":true,"by":"ann","at":1}')
        >>> switch.held("rollback"), switch.held("page")
        ('paused: playbook rollback paused by ann', None)
        """
        for scope in (ALL, playbook):
            pause = self.switches.get(scope)
            if pause is not None and pause.paused:
                return pause.describe()
        return None

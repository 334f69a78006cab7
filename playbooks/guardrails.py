"""Guardrail state of one playbook: cooldowns, hourly limits, per-target limits, deadlines.

A :class:`GuardState` is what the engine keeps per playbook, as JSON bytes in
a durable table (in the worker, the ``guardrails`` Faust table, owned by the
partition of ``fireline.action-requests`` the playbook's name hashes to; see
docs/architecture.md "Where state lives"). Every function here is pure: it
takes a state and the time, and returns the verdict and the new state, which
the engine writes back (acknowledged) before anything acts.

Deadlines are kept with the counters, so a restarted worker still runs a
``verify`` when it is due. (Approval requests expire elsewhere, after
``approval_ttl_s``: agents/incidents/approval_expiry.py.)
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline.incident import Incident

log = logging.getLogger(__name__)

HOUR_S = 3600.0


class Deadline(BaseModel):
    """When to check that a remediation worked: one incident event's ``verify`` at ``due``."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["verify"] = "verify"
    due: float
    incident: Incident = Field(description="The incident event the playbook answered.")
    ran_at: float = Field(description="When the playbook ran.")

    @property
    def id(self) -> str:
        """One deadline per kind and incident event: scheduling it twice keeps one."""
        return f"{self.kind}|{self.incident.id}|{self.incident.revision}"


class GuardState(BaseModel):
    """One playbook's counters and deadlines; unknown fields are ignored (a later version's)."""

    model_config = ConfigDict(frozen=True)

    last_run: dict[str, float] = Field(
        default_factory=dict, description="Incident fingerprint → when the playbook last ran."
    )
    runs: list[float] = Field(default_factory=list, description="Run times in the last hour.")
    target_runs: dict[str, list[float]] = Field(
        default_factory=dict, description="Step target → its run times in the last hour."
    )
    admitted: dict[str, float] = Field(
        default_factory=dict,
        description="Runs admitted in the last hour (incident id|revision → when): a "
        "redelivered event of one goes on without being counted or held again.",
    )
    deadlines: list[Deadline] = Field(default_factory=list)

    def with_admitted(self, run: str, now: float) -> GuardState:
        """This state remembering that ``run`` was admitted at ``now``."""
        kept = {r: t for r, t in self.admitted.items() if t > now - HOUR_S}
        return self.model_copy(update={"admitted": {**kept, run: now}})

    def encode(self) -> bytes:
        """Compact JSON, the table's value."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> GuardState:
        """A table value; none or unreadable is a fresh state (said in the log).

        A damaged counter lets one more run through; refusing every run of the
        playbook forever would be worse, and the log says which key it was.
        """
        if raw is None:
            return cls()
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            log.error("unreadable guardrail state %r (%s); counters start afresh", raw[:200], exc)
            return cls()


def admit_run(
    state: GuardState,
    fingerprint: str,
    now: float,
    cooldown: float | None,
    max_runs_per_hour: int | None,
) -> tuple[str | None, GuardState]:
    """Why the playbook's guardrails hold this run back (state unchanged), or None and the run counted.

    >>> held, state = admit_run(GuardState(), "f", 100.0, cooldown=600, max_runs_per_hour=None)
    >>> held, state.last_run
    (None, {'f': 100.0})
    >>> admit_run(state, "f", 160.0, cooldown=600, max_runs_per_hour=None)[0]
    'cooldown: ran for this fingerprint 60s ago'
    """
    if cooldown is not None and fingerprint in state.last_run:
        since = now - state.last_run[fingerprint]
        if since < cooldown:
            return f"cooldown: ran for this fingerprint {since:.0f}s ago", state
    runs = _last_hour(state.runs, now)
    if max_runs_per_hour is not None and len(runs) >= max_runs_per_hour:
        return f"rate limit: {len(runs)} runs in the last hour", state
    last_run = {f: t for f, t in state.last_run.items() if cooldown is None or now - t < cooldown}
    last_run[fingerprint] = now
    return None, state.model_copy(update={"last_run": last_run, "runs": [*runs, now]})


def admit_target(
    state: GuardState, target: str, now: float, limit: int | None
) -> tuple[str | None, GuardState]:
    """Why the per-target limit holds this step back (state unchanged), or None and it counted.

    >>> _, state = admit_target(GuardState(), "rollback:fraud", 10.0, limit=1)
    >>> admit_target(state, "rollback:fraud", 20.0, limit=1)[0]
    'rate limit: 1 runs against rollback:fraud in the last hour'
    >>> admit_target(state, "rollback:fraud", 10.0 + HOUR_S, limit=1)[0] is None
    True
    """
    runs = _last_hour(state.target_runs.get(target, []), now)
    if limit is not None and len(runs) >= limit:
        return f"rate limit: {len(runs)} runs against {target} in the last hour", state
    targets = {t: kept for t, r in state.target_runs.items() if (kept := _last_hour(r, now))}
    targets[target] = [*runs, now]
    return None, state.model_copy(update={"target_runs": targets})


def add_deadline(state: GuardState, deadline: Deadline) -> GuardState:
    """``state`` with ``deadline`` scheduled (once: the same one scheduled again is kept as is)."""
    if any(d.id == deadline.id for d in state.deadlines):
        return state
    return state.model_copy(update={"deadlines": [*state.deadlines, deadline]})


def due_deadlines(state: GuardState, now: float) -> list[Deadline]:
    """The deadlines that passed, oldest first (they stay until :func:`drop_deadlines`)."""
    return sorted((d for d in state.deadlines if d.due <= now), key=lambda d: d.due)


def drop_deadlines(state: GuardState, ids: set[str]) -> GuardState:
    """``state`` without the deadlines named by ``ids`` (handled)."""
    return state.model_copy(update={"deadlines": [d for d in state.deadlines if d.id not in ids]})


def _last_hour(times: list[float], now: float) -> list[float]:
    return [t for t in times if t > now - HOUR_S]

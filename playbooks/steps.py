"""What became of a playbook step: its outcome, its audit record and its durable state.

:class:`StepRecord` is what the engine reports for each step it considered
(published to ``fireline.actions``). :class:`StepState` is the little the
engine keeps per (incident event, playbook, step) in its idempotency table, so
a redelivered event never runs a step again and a step waiting for a human
holds its playbook until the decision comes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from playbooks.approvals import ApprovalRequest

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What became of one step."""

    OK = "ok"
    FAILED = "failed"
    DRY_RUN = "dry_run"  # recorded, not run
    PENDING_APPROVAL = "pending_approval"  # waits for a human; the playbook resumes after
    REJECTED = "rejected"  # a human said no; the playbook stops there
    SKIPPED = "skipped"  # its condition was false, a guardrail held it, or it already ran
    HELD = "held"  # actions are paused (the runtime kill switch); nothing ran
    UNKNOWN = "unknown"  # it started, the worker died, and the target cannot say if it acted
    STARTED = "started"  # only in the step table: the side effect may be under way


@dataclass(frozen=True)
class StepRecord:
    """One step's audit entry (published to ``fireline.actions``)."""

    playbook: str
    step: str
    action: str
    outcome: Outcome
    detail: str
    params: dict[str, Any] = field(default_factory=dict)  # rendered, secrets redacted
    target: str | None = None
    attempts: int = 0
    duration_s: float = 0.0
    approved_by: str | None = None
    approval: ApprovalRequest | None = None  # set with PENDING_APPROVAL
    escalate: bool = False  # failed with on_failure: escalate

    @property
    def ok(self) -> bool:
        """Did not fail (an unknown outcome is not ok: a human has to look)."""
        return self.outcome not in (Outcome.FAILED, Outcome.REJECTED, Outcome.UNKNOWN)


class StepState(BaseModel):
    """A step's entry in the idempotency table: ``{"outcome": "ok"}`` as JSON bytes.

    Only steps that ran (or were dry-run), wait for approval or were rejected
    get one. A step about to act is recorded ``started`` first (its intent,
    durable before the side effect) and then with its result; ``failed`` lets a
    redelivery try it again. ``at`` (epoch seconds of the write) lets the table
    be pruned (:mod:`playbooks.step_retention`); records written before it
    existed have none. Extra fields are ignored, so a later version may add some.

    >>> StepState.decode(b'{"outcome": "pending_approval"}').waits_for_approval
    True
    >>> StepState(outcome=Outcome.REJECTED, at=1.5).encode()
    b'{"outcome":"rejected","at":1.5}'
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    at: float | None = None  # when it was written (epoch s); None from older versions

    @property
    def waits_for_approval(self) -> bool:
        """A human has not decided yet."""
        return self.outcome is Outcome.PENDING_APPROVAL

    @property
    def started_without_result(self) -> bool:
        """The worker died between the intent and the result: reconcile, never repeat blindly."""
        return self.outcome is Outcome.STARTED

    @property
    def may_run_again(self) -> bool:
        """It failed: a redelivered event tries it again, as before the intent record."""
        return self.outcome is Outcome.FAILED

    @property
    def holds_the_playbook(self) -> bool:
        """The steps after this one wait (for a decision) or never run (a rejection)."""
        return self.outcome in (Outcome.PENDING_APPROVAL, Outcome.REJECTED, Outcome.UNKNOWN)

    @classmethod
    def written_now(cls, outcome: Outcome) -> StepState:
        """The state to write for ``outcome``, stamped with the wall clock."""
        return cls(outcome=outcome, at=time.time())

    def encode(self) -> bytes:
        """Compact JSON, the table's value."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes) -> StepState:
        """Read a table value (as every version so far has written it).

        An unreadable value counts as a step that ran: running an action twice
        is worse than skipping one whose record was damaged.
        """
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            log.error("unreadable playbook step state %r (%s); counted as done", raw[:200], exc)
            return cls(outcome=Outcome.OK)

"""The records of ``fireline.action-requests``: the hop to the owner of a playbook.

Everything that makes a playbook act goes through this topic, keyed by the
playbook's name, so one partition (and so one worker at a time) owns each
playbook: its guardrail counters and deadlines (the ``guardrails`` table) and
its steps' records (``playbook-steps``), in order, restored from their
changelogs after a restart or a rebalance.

- :class:`RunRequest`: an incident event matched the playbook: run it.
- :class:`ResumeRequest`: a human decided on a waiting step: go on (or stop).
- :class:`GuardTick`: sent by each worker to every partition it owns, now and
  then, unkeyed: the owner handles the deadlines of its playbooks that passed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from fireline.incident import Incident
from playbooks.approvals import ApprovalRequest


class RunRequest(BaseModel):
    """Run ``playbook`` for this incident event (the incident's worker found it matches)."""

    type: Literal["run"] = "run"
    playbook: str
    incident: Incident
    requested_at: float


class ResumeRequest(BaseModel):
    """A human (or an expiry) decided on a waiting step of ``approval.playbook``."""

    type: Literal["resume"] = "resume"
    approval: ApprovalRequest


class GuardTick(BaseModel):
    """Handle the deadlines that passed, in the partition this tick was sent to."""

    type: Literal["tick"] = "tick"


ActionRequest = Annotated[RunRequest | ResumeRequest | GuardTick, Field(discriminator="type")]
REQUEST_ADAPTER: TypeAdapter[RunRequest | ResumeRequest | GuardTick] = TypeAdapter(ActionRequest)
TICK = GuardTick().model_dump_json().encode()

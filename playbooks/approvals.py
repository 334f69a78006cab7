"""Approval requests: a step marked ``require_approval`` waits for a human.

The engine stops the playbook at such a step and emits an
:class:`ApprovalRequest`; it is published (keyed by incident id) to the
approvals topic, announced in the chat, and listed by the API. A human approves
or rejects it (API or CLI); the decision is published to the same topic, and
the worker that owns the incident's partition resumes the playbook from that
step, or records the rejection.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from fireline.incident import Incident


class Decision(StrEnum):
    """Where an approval request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ApprovalRequest(BaseModel):
    """A step waiting for a human, with everything needed to resume it."""

    type: Literal["approval"] = "approval"
    id: str
    incident: Incident = Field(description="The incident event the playbook was answering.")
    playbook: str
    step_index: int = Field(ge=0)
    step: str
    action: str
    params: dict[str, Any] = Field(default_factory=dict, description="Rendered, redacted.")
    requested_at: float
    status: Decision = Decision.PENDING
    decided_by: str | None = None
    decided_at: float | None = None

    def decided(self, decision: Decision, by: str, at: float) -> ApprovalRequest:
        """A copy carrying the human's decision."""
        return self.model_copy(update={"status": decision, "decided_by": by, "decided_at": at})


def approval_expired(request: ApprovalRequest, ttl_s: float, now: float) -> bool:
    """Whether a still pending ``request`` is past its deadline (``ttl_s`` 0: never).

    An expired request counts as rejected: it is refused at decision time, and
    the worker owning it publishes the rejection.
    """
    return ttl_s > 0 and now > request.requested_at + ttl_s


def approval_id(incident: Incident, playbook: str, step_index: int) -> str:
    """Stable: a redelivered incident event asks for the same approval, not a second one."""
    raw = f"{incident.id}|{incident.revision}|{playbook}|{step_index}"
    return "apr-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


class VerificationDue(BaseModel):
    """A playbook's ``verify`` deadline passed: check the incident, run on_unverified if open.

    Published on the same topic as approvals (keyed by incident id), so the worker
    owning the incident handles it in order, where step idempotency is recorded.
    """

    type: Literal["verification"] = "verification"
    incident: Incident = Field(description="The incident event the playbook answered.")
    playbook: str
    ran_at: float
    deadline: float


PlaybookControl = Annotated[ApprovalRequest | VerificationDue, Field(discriminator="type")]
CONTROL_ADAPTER: TypeAdapter[ApprovalRequest | VerificationDue] = TypeAdapter(PlaybookControl)

"""Approvals expire: nobody decided within ``approval_ttl_s``, so the step counts as rejected.

Two checks, so that an expired approval never runs whichever comes first: the
worker owning an incident publishes the rejection of each of its approvals
whose deadline passed (its thread then shows it rejected, and why), and a
decision that arrives after the deadline (made just before, applied just
after) is read as that rejection too. The API and the Slack buttons refuse to
decide an expired approval (409).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fireline.durations import human_duration
from playbooks.approvals import ApprovalRequest, Decision, approval_expired


def expired_by(ttl_s: float) -> str:
    """Who rejected an expired approval, as its message and the audit show it."""
    return f"fireline (expired: nobody decided within {human_duration(ttl_s)})"


def expired_now(
    approvals: Mapping[str, ApprovalRequest],
    ttl_s: float,
    now: float,
    owned: Callable[[str], bool],
) -> list[ApprovalRequest]:
    """The rejections to publish: pending approvals past their deadline, owned here."""
    return [
        request.decided(Decision.REJECTED, expired_by(ttl_s), now)
        for request in approvals.values()
        if request.status is Decision.PENDING
        and approval_expired(request, ttl_s, now)
        and owned(request.incident.id)
    ]


def too_late(request: ApprovalRequest, ttl_s: float) -> ApprovalRequest:
    """``request`` as decided, or rejected when an approval was decided after its deadline.

    >>> from tests.factories import make_incident
    >>> asked = ApprovalRequest(id="apr-1", incident=make_incident(), playbook="p",
    ...     step_index=0, step="s", action="log", requested_at=100.0)
    >>> too_late(asked.decided(Decision.APPROVED, "alice", 150.0), 60).status
    <Decision.APPROVED: 'approved'>
    >>> late = too_late(asked.decided(Decision.APPROVED, "alice", 170.0), 60)
    >>> late.status, late.decided_by
    (<Decision.REJECTED: 'rejected'>, 'fireline (expired: nobody decided within 60 s)')
    """
    if (
        request.status is Decision.APPROVED
        and request.decided_at is not None
        and ttl_s > 0
        and request.decided_at > request.requested_at + ttl_s
    ):
        return request.decided(Decision.REJECTED, expired_by(ttl_s), request.decided_at)
    return request

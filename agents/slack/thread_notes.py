"""Notes in incidents' chat threads that no playbook step posts itself.

Approval requests (with their buttons), what the playbook steps did, what a
dry-run playbook would have done (the engine's dry-run notifier), and
reminders for critical incidents nobody has acknowledged. Each goes into the
incident's thread when it has one; approvals and dry-run summaries fall back
to the default channel (a human must see them), the others are skipped (a
playbook without a chat step wants no chat). A failed post is logged and
never fails anything else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fireline.errors import ActionError
from fireline.incident import Incident, Severity, Status
from playbooks.approvals import ApprovalRequest
from playbooks.chat.blocks import SlackMessage, approval_decided_message, approval_message
from playbooks.chat.sinks import ChatSink
from playbooks.chat.thread_messages import (
    dry_run_message,
    reminder_message,
    step_results_message,
)
from playbooks.chat.threads import ThreadRoot, ThreadStore
from playbooks.steps import StepRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReminderPolicy:
    """Remind an unacknowledged critical incident's thread every ``after_s``, ``limit`` times."""

    after_s: float = 1800.0
    limit: int = 6
    mention: str = "<!here>"


def due_reminders(
    roots: list[tuple[str, ThreadRoot]],
    incidents: Mapping[str, Incident],
    now: float,
    policy: ReminderPolicy,
    owned: Callable[[str], bool],
) -> list[tuple[Incident, ThreadRoot]]:
    """The threads to remind now: open (not acknowledged), critical, notifying, owned here.

    Quiet time counts from the root message or the latest reminder, whichever is later.
    """
    if policy.after_s <= 0 or policy.limit <= 0:
        return []
    due = []
    for incident_id, root in roots:
        incident = incidents.get(incident_id)
        if (
            incident is None
            or incident.status is not Status.OPEN
            or incident.severity is not Severity.CRITICAL
            or not incident.notify
            or root.reminders >= policy.limit
            or now - root.last_nudged_at < policy.after_s
            or not owned(incident_id)
        ):
            continue
        due.append((incident, root))
    return due


class ThreadNotes:
    """Posts approvals, step results and reminders into incidents' threads."""

    def __init__(
        self,
        sink: ChatSink | None,
        threads: ThreadStore,
        default_channel: str | None,
        reminders: ReminderPolicy = ReminderPolicy(),
        step_replies: bool = True,
    ) -> None:
        self.sink = sink
        self.threads = threads
        self.default_channel = default_channel
        self.reminders = reminders
        self.step_replies = step_replies

    async def announce_approval(self, request: ApprovalRequest) -> None:
        """Ask for the decision in the incident's thread (the channel when it has none)."""
        if self.sink is None or self.default_channel is None:
            return
        message = approval_message(request, _params(request))
        thread = self.threads.any_thread(request.incident.id)
        try:
            if thread is not None:
                ref = await self.sink.send(thread.channel, message, thread_ts=thread.ts)
            else:
                ref = await self.sink.send(self.default_channel, message)
        except ActionError as exc:
            log.warning("could not announce approval %s: %s", request.id, exc)
            return
        await self.threads.remember_approval(request.incident.id, request.id, ref)

    async def approval_decided(self, request: ApprovalRequest) -> None:
        """Rewrite the request's message: the decision and who made it, without buttons."""
        ref = self.threads.approval_message(request.incident.id, request.id)
        if self.sink is None or ref is None:
            return
        try:
            await self.sink.update(ref, approval_decided_message(request, _params(request)))
        except ActionError as exc:
            log.warning("could not update approval %s: %s", request.id, exc)
            return
        await self.threads.forget_approval(request.incident.id, request.id)

    async def step_results(self, incident_id: str, records: list[StepRecord]) -> None:
        """Reply in the incident's thread with what its playbook steps did."""
        if self.sink is None or not self.step_replies:
            return
        thread = self.threads.any_thread(incident_id)
        message = step_results_message(records)
        if thread is None or message is None:
            return
        try:
            await self.sink.send(thread.channel, message, thread_ts=thread.ts)
        except ActionError as exc:
            log.warning("could not post the step results of %s: %s", incident_id, exc)

    async def announce_dry_run(
        self, playbook: str, incident: Incident, records: Sequence[StepRecord]
    ) -> None:
        """Say what a dry-run playbook would have done, in the thread (the channel when none)."""
        if self.sink is None or self.default_channel is None:
            return
        text = dry_run_message(playbook, incident, records)
        thread = self.threads.any_thread(incident.id)
        try:
            if thread is not None:
                await self.sink.send(thread.channel, SlackMessage(text), thread.ts)
            else:
                await self.sink.post(self.default_channel, text)
        except ActionError as exc:
            log.warning("could not post the dry-run summary of %s: %s", playbook, exc)

    async def remind(
        self, incidents: Mapping[str, Incident], now: float, owned: Callable[[str], bool]
    ) -> int:
        """Remind every thread that is due (see :func:`due_reminders`); return how many."""
        if self.sink is None:
            return 0
        sent = 0
        for incident, root in due_reminders(
            self.threads.items(), incidents, now, self.reminders, owned
        ):
            message = reminder_message(incident, self.reminders.mention, now, root.reminders + 1)
            try:
                # Broadcast: a reply alone reaches only the thread's followers.
                await self.sink.send(
                    root.ref.channel, message, thread_ts=root.thread_ts, broadcast=True
                )
            except ActionError as exc:
                log.warning("could not remind %s of %s: %s", root.channel, incident.id, exc)
                continue
            await self.threads.reminded(incident.id, root, now)
            sent += 1
        return sent


def _params(request: ApprovalRequest) -> str:
    return json.dumps(request.params, separators=(",", ":"))

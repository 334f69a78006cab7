"""What actions are given to act with: the worker's outbound collaborators, typed.

The worker builds one :class:`ActionContext` from its settings and passes it
to the engine; tests build one with only what they exercise. A collaborator a
worker may lack is Optional, and :meth:`ActionContext.require` turns its
absence into an ActionError naming it, which the engine reports as a failed
step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from fireline.errors import ActionError
from playbooks.chat.sinks import ChatSink
from playbooks.chat.threads import ThreadStore
from playbooks.http_sessions import HttpSessions, SessionPerCall

T = TypeVar("T")

Record = tuple[bytes | None, bytes, dict[str, bytes]]  # key, value, headers


class EventPublisher(Protocol):
    """Sends (key, value, headers) records to a topic and waits for the broker's acks."""

    async def publish(self, topic: str, records: Sequence[Record]) -> object:
        """Raise BrokerError when the broker does not take them (actions ignore the result)."""
        ...


@dataclass(frozen=True)
class ActionContext:
    """The outbound collaborators actions use, injected so tests can point them anywhere."""

    chat: ChatSink | None = None  # Slack, or the console without a token
    events: EventPublisher | None = None  # the kafka, rollback and retrain actions publish here
    threads: ThreadStore = field(default_factory=ThreadStore)  # each incident's chat thread
    default_channel: str | None = None  # where chat goes when a step names no channel
    dashboard_url: str | None = None  # template linked from root messages ({model}, {service})
    http: HttpSessions = field(default_factory=SessionPerCall)  # outbound HTTP's session
    runbook_url: str | None = None  # the running playbook's, linked from chat messages
    # The running step's: the same for every attempt and redelivery of one step of one
    # incident event, so a target that dedups by it (Idempotency-Key) acts once.
    idempotency_key: str | None = None

    def for_playbook(self, runbook_url: str | None) -> ActionContext:
        """This context as one playbook's steps see it: with its runbook, when it has one."""
        return self if runbook_url is None else replace(self, runbook_url=runbook_url)

    def for_step(self, idempotency_key: str) -> ActionContext:
        """This context as one step sees it: with the step's idempotency key."""
        return replace(self, idempotency_key=idempotency_key)

    def require(self, collaborator: T | None, what: str) -> T:
        """``collaborator`` (one of this context's fields), or an ActionError naming ``what``.

        >>> ActionContext().require(ActionContext().chat, "chat sink")
        Traceback (most recent call last):
        ...
        fireline.errors.ActionError: no chat sink is configured for this worker
        """
        if collaborator is None:
            raise ActionError(f"no {what} is configured for this worker")
        return collaborator

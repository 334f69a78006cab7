"""A chat sink that counts its calls by outcome, so Prometheus can tell when Slack is unreachable.

Every message fireline sends (incident roots, thread replies, root updates, charts,
the ``slack`` action) goes through the worker's one chat sink; wrapping it counts
them all in ``fireline_chat_calls_total{method,outcome}``, whichever part sent it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final, TypeVar

import aiohttp
from prometheus_client import Counter
from slack_sdk.errors import SlackApiError

from playbooks.chat.blocks import SlackMessage
from playbooks.chat.sinks import ChatSink, MessageRef

T = TypeVar("T")

POST: Final = "chat.postMessage"
UPDATE: Final = "chat.update"
UPLOAD: Final = "files.upload"
HISTORY: Final = "conversations.history"  # looking for an incident's root
OK: Final = "ok"
REJECTED: Final = "rejected"  # Slack answered with an error (bad token, unknown channel)
UNREACHABLE: Final = "unreachable"  # no answer, or a server error (Slack or a proxy is down)
FAILED: Final = "failed"  # anything else
METHODS: Final = (POST, UPDATE, UPLOAD, HISTORY)
OUTCOMES: Final = (OK, REJECTED, UNREACHABLE, FAILED)


def outcome_of(error: BaseException) -> str:
    """The outcome label of a failed call, from the error the Slack sink chained.

    >>> outcome_of(RuntimeError("x"))
    'failed'
    """
    cause = error.__cause__ or error
    if isinstance(cause, SlackApiError):
        status = getattr(cause.response, "status_code", None)
        return UNREACHABLE if isinstance(status, int) and status >= 500 else REJECTED
    if isinstance(cause, OSError | TimeoutError | aiohttp.ClientError):
        return UNREACHABLE
    return FAILED


class CountedChat:
    """Delegates to ``sink`` and counts each call in ``calls`` (labels: method, outcome)."""

    def __init__(self, sink: ChatSink, calls: Counter) -> None:
        """Every (method, outcome) series starts at 0, so the first failure is an increase."""
        self.sink = sink
        self.calls = calls
        for method in METHODS:
            for outcome in OUTCOMES:
                calls.labels(method, outcome)

    async def post(self, channel: str, text: str) -> str:
        """The sink's ``post``, counted."""
        return await self._counted(POST, self.sink.post(channel, text))

    async def send(
        self,
        channel: str,
        message: SlackMessage,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> MessageRef:
        """The sink's ``send``, counted."""
        return await self._counted(POST, self.sink.send(channel, message, thread_ts, broadcast))

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        """The sink's ``update``, counted."""
        await self._counted(UPDATE, self.sink.update(ref, message))

    async def upload(self, thread: MessageRef, filename: str, content: bytes, title: str) -> None:
        """The sink's ``upload``, counted."""
        await self._counted(UPLOAD, self.sink.upload(thread, filename, content, title))

    async def find_root(self, channel: str, incident_id: str) -> MessageRef | None:
        """The sink's ``find_root``, counted."""
        return await self._counted(HISTORY, self.sink.find_root(channel, incident_id))

    async def _counted(self, method: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except Exception as exc:
            self.calls.labels(method, outcome_of(exc)).inc()
            raise
        self.calls.labels(method, OK).inc()
        return result

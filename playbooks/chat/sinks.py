"""Chat sinks: where Slack-style messages go (Slack's Web API, or the console)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from fireline.errors import ActionError
from playbooks.chat.blocks import SlackMessage, is_root_of
from playbooks.chat.pacing import ChannelPacer

log = logging.getLogger(__name__)

# How far back (newest first) a channel's history is searched for an incident's root.
ROOT_LOOKUP_MESSAGES = 200


@dataclass(frozen=True)
class MessageRef:
    """Where a posted message is: the channel (Slack's id when it gives one) and its ts."""

    channel: str
    ts: str


class ChatSink(Protocol):
    """Posts messages to channels (and threads) and updates them."""

    async def post(self, channel: str, text: str) -> str:
        """Post ``text`` to ``channel``; raise ActionError when it cannot."""
        ...

    async def send(
        self,
        channel: str,
        message: SlackMessage,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> MessageRef:
        """Post ``message`` (text and blocks), as a reply when ``thread_ts`` is given.

        ``broadcast``: a reply that also shows in the channel.
        """
        ...

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        """Replace the message at ``ref`` in place."""
        ...

    async def upload(self, thread: MessageRef, filename: str, content: bytes, title: str) -> None:
        """Upload a file into the thread of ``thread``."""
        ...

    async def find_root(self, channel: str, incident_id: str) -> MessageRef | None:
        """``incident_id``'s root in ``channel`` (a message sent with its root metadata), if any.

        Raises ActionError when the channel cannot be searched.
        """
        ...


class SlackSink:
    """Posts through slack-sdk's AsyncWebClient (``chat.postMessage``).

    Every call into a channel first waits its turn at the channel's pacer, so a
    burst of incidents is spread out at the rate Slack accepts instead of being
    answered with 429s.
    """

    def __init__(self, client: AsyncWebClient, pacer: ChannelPacer | None = None) -> None:
        self.client = client
        self.pacer = pacer or ChannelPacer()
        # Playbooks name channels (#oncall), Slack answers with ids (C0123): one
        # channel must be one bucket whichever way a call names it.
        self._channel_ids: dict[str, str] = {}

    async def post(self, channel: str, text: str) -> str:
        """Post and return the message timestamp Slack assigned."""
        return (await self.send(channel, SlackMessage(text))).ts

    async def send(
        self,
        channel: str,
        message: SlackMessage,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> MessageRef:
        """chat.postMessage; the reference names the channel id Slack answers with."""
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        if thread_ts and broadcast:
            extra["reply_broadcast"] = True
        if message.blocks:
            extra["blocks"] = message.blocks
        if message.metadata:
            extra["metadata"] = message.metadata
        response = await self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=message.text, mrkdwn=True, **extra
            ),
        )
        channel_id = str(response.get("channel") or channel)
        self._channel_ids[channel] = channel_id
        return MessageRef(channel_id, str(response.get("ts", "")))

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        """chat.update of the message at ``ref`` (blocks replaced, or removed when none)."""
        await self._call(
            "chat.update",
            ref.channel,
            lambda: self.client.chat_update(
                channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks
            ),
        )

    async def upload(self, thread: MessageRef, filename: str, content: bytes, title: str) -> None:
        """files_upload_v2: get an upload URL, send the bytes there, complete into the thread."""
        await self._call(
            "files.upload",
            thread.channel,
            lambda: self.client.files_upload_v2(
                channel=thread.channel,
                thread_ts=thread.ts,
                file=content,
                filename=filename,
                title=title,
            ),
        )

    async def find_root(self, channel: str, incident_id: str) -> MessageRef | None:
        """conversations.history (with metadata) of the channel's latest messages, newest first.

        Needs the ``channels:history`` scope (``groups:history`` for private
        channels) and the channel's id once this worker has not posted there yet.
        A history Slack refuses (a name where it wants an id, no scope) is logged
        and counts as no root; Slack unreachable raises ActionError.
        """
        channel_id = self._channel_ids.get(channel, channel)
        try:
            response = await self._call(
                "conversations.history",
                channel,
                lambda: self.client.conversations_history(
                    channel=channel_id, include_all_metadata=True, limit=ROOT_LOOKUP_MESSAGES
                ),
            )
        except ActionError as exc:
            if not isinstance(exc.__cause__, SlackApiError):
                raise
            log.warning("cannot look for the root of %s in %s: %s", incident_id, channel, exc)
            return None
        for message in response.get("messages") or []:
            if is_root_of(message.get("metadata"), incident_id) and message.get("ts"):
                return MessageRef(channel_id, str(message["ts"]))
        return None

    async def _call(self, method: str, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        await self.pacer.wait(self._channel_ids.get(channel, channel))
        try:
            return await call()
        except SlackApiError as exc:
            raise ActionError(f"Slack rejected {method} to {channel}: {_slack_error(exc)}") from exc
        except SlackClientError as exc:  # e.g. the upload URL refused the bytes
            raise ActionError(f"Slack {method} to {channel} failed: {exc}") from exc
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            raise ActionError(f"Slack unreachable at {self.client.base_url}: {reason}") from exc


def _slack_error(exc: SlackApiError) -> str:
    # A proxy's 503 page or a broken body gives no JSON: report the HTTP status then.
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
    return f"HTTP {status}" if status else "no usable response"


class ConsoleSink:
    """Prints the message instead, for running without a Slack token.

    The console is read top to bottom, so each thing shows once: a message it
    printed and that is then rewritten in place (a root turning resolved) shows
    as its new first line only, the new status; the details are in the thread
    reply that comes with it. A rewrite of a message it never printed (after a
    restart) shows whole.
    """

    REMEMBERED = 10_000  # messages whose rewrites print short; the oldest are forgotten

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.sent = 0
        self._printed: dict[MessageRef, None] = {}  # insertion-ordered, bounded

    async def post(self, channel: str, text: str) -> str:
        """Print a framed message and return a console reference."""
        return (await self.send(channel, SlackMessage(text))).ts

    async def send(
        self,
        channel: str,
        message: SlackMessage,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> MessageRef:
        """Print the message's text (the blocks' content in plain text), framed."""
        self.sent += 1
        where = f"{channel}, thread {thread_ts}" if thread_ts else channel
        if thread_ts and broadcast:
            where += ", also in the channel"
        self._print(f"[console chat → {where}]", message.text)
        ref = MessageRef(channel, f"console-{self.sent}")
        self._remember(ref)
        return ref

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        """Print the new first line of message ``ref`` (all of it if never printed here)."""
        text = message.text.split("\n", 1)[0] if ref in self._printed else message.text
        self._print(f"[console chat → {ref.channel}, update {ref.ts}]", text)
        self._remember(ref)

    def _remember(self, ref: MessageRef) -> None:
        self._printed[ref] = None
        if len(self._printed) > self.REMEMBERED:
            del self._printed[next(iter(self._printed))]

    async def upload(self, thread: MessageRef, filename: str, content: bytes, title: str) -> None:
        """Print that a file would be uploaded (the console shows no pictures)."""
        head = f"[console chat → {thread.channel}, thread {thread.ts}]"
        self._print(head, f"file {filename}: {title} ({len(content)} bytes)")

    async def find_root(self, channel: str, incident_id: str) -> MessageRef | None:
        """None: what the console printed cannot be searched."""
        return None

    def _print(self, head: str, text: str) -> None:
        rule = "─" * 72
        print(f"\n{rule}\n{head}\n{text}\n{rule}", file=self.stream or sys.stdout, flush=True)


def make_chat_sink(
    token: str | None,
    base_url: str,
    timeout_s: float = 10.0,
    pacer: ChannelPacer | None = None,
) -> ChatSink:
    """Slack when a token is configured, else the console.

    The client retries a dropped connection once, a 429 once after its
    Retry-After, and a 500 or 503 once; what still fails becomes a failed action.
    (A retry after a dropped connection or a 5xx can post a message twice if
    Slack had received it: preferred to an alert that never arrives.)
    """
    if not token:
        return ConsoleSink()
    retries = [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        AsyncRateLimitErrorRetryHandler(max_retry_count=1),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]
    client = AsyncWebClient(
        token=token, base_url=base_url, timeout=int(timeout_s), retry_handlers=retries
    )
    return SlackSink(client, pacer)


__all__ = [
    "ActionError",
    "ChannelPacer",
    "ChatSink",
    "ConsoleSink",
    "MessageRef",
    "SlackSink",
    "make_chat_sink",
]

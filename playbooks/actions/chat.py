"""Chat sinks: where Slack-style messages go (Slack's Web API, or the console)."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from fireline.errors import ActionError


class ChatSink(Protocol):
    """Posts a message to a channel and returns a reference to it."""

    async def post(self, channel: str, text: str) -> str:
        """Post ``text`` to ``channel``; raise ActionError when it cannot."""
        ...


class SlackSink:
    """Posts through slack-sdk's AsyncWebClient (``chat.postMessage``)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post(self, channel: str, text: str) -> str:
        """Post and return the message timestamp Slack assigned."""
        try:
            response = await self.client.chat_postMessage(channel=channel, text=text, mrkdwn=True)
        except SlackApiError as exc:
            raise ActionError(
                f"Slack rejected chat.postMessage to {channel}: {_slack_error(exc)}"
            ) from exc
        except (OSError, TimeoutError, aiohttp.ClientError) as exc:
            reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            raise ActionError(f"Slack unreachable at {self.client.base_url}: {reason}") from exc
        return str(response.get("ts", ""))


def _slack_error(exc: SlackApiError) -> str:
    # A proxy's 503 page or a broken body gives no JSON: report the HTTP status then.
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
    return f"HTTP {status}" if status else "no usable response"


class ConsoleSink:
    """Prints the message instead, for running without a Slack token."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.sent = 0

    async def post(self, channel: str, text: str) -> str:
        """Print a framed message and return a console reference."""
        out = self.stream or sys.stdout
        rule = "─" * 72
        print(f"\n{rule}\n[console chat → {channel}]\n{text}\n{rule}", file=out, flush=True)
        self.sent += 1
        return f"console-{self.sent}"


def make_chat_sink(token: str | None, base_url: str, timeout_s: float = 10.0) -> ChatSink:
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
    return SlackSink(client)


__all__ = ["ActionError", "ChatSink", "ConsoleSink", "SlackSink", "make_chat_sink"]

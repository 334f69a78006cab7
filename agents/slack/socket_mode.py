"""Slack Socket Mode: button presses over a websocket the worker opens, no public endpoint.

The worker asks ``apps.connections.open`` (with the app-level token) for a
websocket URL and connects; Slack then delivers each interaction to one of the
app's open connections as an envelope to acknowledge within 3 seconds. The
payload is the ``block_actions`` JSON the HTTP endpoint receives, applied by
:meth:`SlackInteractions.handle_payload`. No signature: only Slack can write to
a websocket opened with the app's token.

slack-sdk's asyncio client does the connecting: it retries a failed connection
every ``ping_interval`` seconds, pings the server and reconnects when the
connection drops or Slack asks it to (with a fresh URL after a failed handshake,
see ``_forget_failed_urls``). Failures are logged, never raised, so the worker
keeps running without buttons until Slack is reachable again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import mode
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from agents.slack.interactions import SlackInteractions

log = logging.getLogger(__name__)

PING_INTERVAL_S = 5.0  # also the SDK's delay between connection attempts
CLOSE_TIMEOUT_S = 5.0
_EXPECTED_FAILURES = (SlackApiError, aiohttp.ClientError, OSError)  # OSError: timeouts too


class _SdkLogFilter(logging.Filter):
    """Keeps the SDK's logs one line per record and free of the token.

    The SDK logs each failed connection attempt with a traceback (every few seconds
    while Slack is unreachable or refuses), though its message already names the
    error, and Slack's error answers span lines.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, _EXPECTED_FAILURES):
            record.exc_info = None
            record.exc_text = None
        message = record.getMessage()
        cleaned = message.replace(self.token, "<app token>").replace("\n", " ")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class SlackSocketMode(mode.Service):
    """Receives Slack button presses over Socket Mode for the worker's lifetime."""

    def __init__(
        self,
        buttons: SlackInteractions,
        app_token: str,
        base_url: str,
        ping_interval: float = PING_INTERVAL_S,
        **kwargs: Any,
    ) -> None:
        self.buttons = buttons
        self._app_token = app_token
        self.base_url = base_url
        self.ping_interval = ping_interval
        self._client: SocketModeClient | None = None
        self._sdk_log = logging.getLogger(f"{__name__}.sdk")
        self._sdk_filter = _SdkLogFilter(app_token)
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        """Make the client (it needs the running loop) and connect in the background."""
        self._sdk_log.addFilter(self._sdk_filter)
        web_client = AsyncWebClient(
            token=self._app_token, base_url=self.base_url, logger=self._sdk_log
        )
        client = SocketModeClient(
            app_token=self._app_token,
            logger=self._sdk_log,
            web_client=web_client,
            ping_interval=self.ping_interval,
        )
        client.socket_mode_request_listeners.append(self._on_request)
        self._client = client
        # Not awaited here: connect() retries until it succeeds, and the worker must
        # start (and stay up) whether or not Slack answers.
        self.add_future(self._connect(client))
        self.add_future(self._forget_failed_urls(client))

    async def on_stop(self) -> None:
        """Close the websocket and the client's HTTP session."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - shutting down: report and go on
                log.warning("Slack Socket Mode: closing the connection failed: %r", exc)
        self._sdk_log.removeFilter(self._sdk_filter)

    async def _connect(self, client: SocketModeClient) -> None:
        log.info(
            "Slack Socket Mode: connecting via %sapps.connections.open (retried every %.0f s)",
            self.base_url,
            self.ping_interval,
        )
        try:
            await client.connect()
        except Exception:  # a crash here would stop the whole worker
            log.exception("Slack Socket Mode: gave up connecting; buttons need the HTTP endpoint")
            return
        if not client.closed:
            log.info("Slack Socket Mode: connected; button presses arrive over the websocket")

    async def _forget_failed_urls(self, client: SocketModeClient) -> None:
        # The SDK retries a failed handshake with the same websocket URL, but Slack's
        # URLs carry a single-use ticket: after one failed handshake it would retry a
        # dead URL forever. With no URL, its next attempt asks for a fresh one.
        while not self.should_stop:
            await self.sleep(self.ping_interval)
            if client.wss_uri is not None and not await client.is_connected():
                client.wss_uri = None

    async def _on_request(
        self, client: AsyncBaseSocketModeClient, request: SocketModeRequest
    ) -> None:
        # Ack first: Slack shows the user an error unless the ack comes within 3 s,
        # and applying waits on Kafka.
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        kind = request.payload.get("type")
        if request.type != "interactive" or kind != "block_actions":
            log.debug("Slack Socket Mode: ignored a %s request (%s)", request.type, kind)
            return
        try:
            notes = await self.buttons.handle_payload(request.payload)
        except Exception:
            log.exception("Slack Socket Mode: applying envelope %s failed", request.envelope_id)
            return
        log.info("Slack Socket Mode: button press: %s", notes)

"""Slack request signatures: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``.

https://api.slack.com/authentication/verifying-requests-from-slack
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from aiohttp import web

from agents.incidents.api import error
from fireline.errors import ApiError

log = logging.getLogger(__name__)

MAX_AGE_S = 300  # older requests may be replays


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Slack sends in ``X-Slack-Signature`` for this timestamp and body."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify_slack_request(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Return when the request is Slack's and fresh; else ApiError(401) saying why."""
    if not timestamp or not signature:
        raise ApiError(401, "missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise ApiError(401, "X-Slack-Request-Timestamp is not a number") from None
    if abs(now - sent) > MAX_AGE_S:
        raise ApiError(401, "stale request: timestamp more than 5 minutes from now")
    expected = slack_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise ApiError(401, "bad Slack signature")


async def read_signed_body(
    request: web.Request, signing_secret: str | None, now: float, what: str
) -> bytes | web.Response:
    """The body of a request Slack signed, or the JSON 401 to answer (``what``: in the log).

    Without a signing secret the endpoint is off: every request is refused.
    """
    if signing_secret is None:
        return error(401, f"{what} are disabled: set FIRELINE_SLACK_SIGNING_SECRET")
    body = await request.read()
    try:
        verify_slack_request(
            signing_secret,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            body,
            now,
        )
    except ApiError as exc:
        log.warning("refused %s: %s", what, exc)
        return error(exc.status, str(exc))
    return body

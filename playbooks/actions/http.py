"""Outbound HTTP for actions: one call, a per-call timeout, failures as values.

The session comes from ``context.http``: in a worker the one session it keeps
open from start to stop (pooled connections), elsewhere a session per call
(see :mod:`playbooks.http_sessions`).

Timeouts, refused connections and non-2xx answers are what outside systems do:
they come back as an :class:`HttpReply` the action turns into ``ok=False``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from playbooks.context import ActionContext

EXCERPT_CHARS = 200
USER_AGENT = "fireline-actions"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class HttpReply:
    """An HTTP answer, or ``status == 0`` with ``error`` when there was none."""

    status: int
    body: bytes = b""
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def describe(self, redact: Iterable[str] = ()) -> str:
        """``HTTP 503: <excerpt>`` or the transport error, with any secret masked."""
        if self.status == 0:
            text = self.error
        else:
            excerpt = " ".join(self.body.decode("utf-8", "replace").split())
            if len(excerpt) > EXCERPT_CHARS:
                excerpt = excerpt[:EXCERPT_CHARS] + "…"
            text = f"HTTP {self.status}: {excerpt}" if excerpt else f"HTTP {self.status}"
        for secret in redact:  # a server may echo a header back; never pass a secret on
            if secret:
                text = text.replace(secret, "***")
        return text


def url_target(url: str) -> str:
    """Host and path of ``url``: no scheme, credentials or query (which may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def idempotency_headers(context: ActionContext) -> dict[str, str]:
    """``Idempotency-Key: <the step's key>``, when the engine gave one.

    A receiver that honours it acts once however often the step is sent
    (retries, redeliveries).
    """
    key = context.idempotency_key
    return {IDEMPOTENCY_HEADER: key} if key else {}


def json_bytes(payload: Any) -> bytes:
    """Compact JSON; the exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def request(
    context: ActionContext,
    method: str,
    url: str,
    timeout_s: float,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> HttpReply:
    """Send one request; never raises for transport failures or error statuses."""
    sent = {"User-Agent": USER_AGENT, **(headers or {})}
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with context.http.session() as session:
            return await _send(session, method, url, body, sent, params, timeout)
    except TimeoutError:
        return HttpReply(0, error=f"no answer from {url_target(url)} within {timeout_s:g}s")
    except (aiohttp.ClientError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return HttpReply(0, error=f"{url_target(url)} unreachable: {reason}")


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None,
    timeout: aiohttp.ClientTimeout,
) -> HttpReply:
    async with session.request(
        method, url, data=body, headers=headers, params=params, timeout=timeout
    ) as response:
        return HttpReply(response.status, await response.read())

"""Where actions' outbound HTTP gets its aiohttp session.

The worker keeps one :class:`SharedSession` open from start to stop, so every
webhook, page and MLflow call reuses pooled connections. Anything that runs
actions without a worker (tests, tools) gets :class:`SessionPerCall`, which
opens and closes a session around each request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import aiohttp

from fireline.errors import ActionError


class HttpSessions(Protocol):
    """Hands out the session one outbound request goes through."""

    def session(self) -> AbstractAsyncContextManager[aiohttp.ClientSession]:
        """A session for the duration of one request."""
        ...


class SessionPerCall:
    """A fresh session per request, closed after it: nothing to open or close."""

    def session(self) -> AbstractAsyncContextManager[aiohttp.ClientSession]:
        """A new session; leaving the ``async with`` closes it."""
        return aiohttp.ClientSession()


class SharedSession:
    """One session for every request, from :meth:`open` to :meth:`close`."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Create the session (inside the running loop, as aiohttp requires)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None:
            await self._session.close()

    def session(self) -> AbstractAsyncContextManager[aiohttp.ClientSession]:
        """The shared session; leaving the ``async with`` keeps it open."""
        return self._borrow()

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is None or self._session.closed:
            raise ActionError(
                "the worker's HTTP session is not open (the worker has not started or is stopping)"
            )
        yield self._session

"""A loopback HTTP server that records every request and answers as told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # one per TCP connection: equal ports mean a reused connection

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    """Answers ``status`` with ``reply`` (JSON) after ``delay_s``; keeps every request."""

    status: int = 200
    reply: Any = field(default_factory=lambda: {"ok": True})
    delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client_port = peer[1] if peer else 0
        self.requests.append(
            Recorded(request.method, request.path, dict(request.headers), body, client_port)
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response(self.reply, status=self.status)


@asynccontextmanager
async def recording_server() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.port = runner.addresses[0][1]
    try:
        yield recorder
    finally:
        await runner.cleanup()

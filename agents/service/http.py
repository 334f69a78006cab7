"""The worker's HTTP server: /metrics, /healthz, /readyz and /openapi.json (aiohttp).

/readyz tells anyone whether the worker is ready; what is missing (the broker's
address, topic names) only to a caller who may read (``details_for``). Every
error is JSON, ``{"error": ...}``, an unexpected one included (500).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    """Whether the worker can do its job, and what is missing if not."""

    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """All checks passed."""
        return all(self.checks.values()) and not self.problems


ReadinessProbe = Callable[[], Awaitable[Readiness]]


def build_web_app(
    registry: CollectorRegistry,
    readiness: ReadinessProbe,
    add_routes: Callable[[web.Application], None] | None = None,
    details_for: Callable[[web.Request], bool] = lambda _: True,
    openapi: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    """The aiohttp application: the operational endpoints, plus ``add_routes``'s.

    ``details_for``: whether /readyz may show this caller its checks and problems.
    ``openapi``: the API description served at /openapi.json (default: the worker's).
    """

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        report = await readiness()
        body: dict[str, Any] = {"ready": report.ready}
        if details_for(request):
            body.update(checks=report.checks, problems=report.problems)
        return web.json_response(body, status=200 if report.ready else 503)

    async def openapi_json(_: web.Request) -> web.Response:
        from agents.service.openapi import worker_openapi  # the routes' modules import this one

        return web.json_response((openapi or worker_openapi)())

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi_json)
    if add_routes is not None:
        add_routes(app)
    return app


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown routes, wrong methods and bugs answer in JSON too: ``{"error": ...}``."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception:  # a bug: logged with its trace; the client gets JSON, not a text page
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error (logged by the worker)"}, status=500)


class HttpServer:
    """Runs the web app on host:port until stopped."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; ``port`` 0 picks a free port, readable afterwards."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0 and self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

"""``fireline demo --scenario bad-deploy``: a worse model version goes live and is rolled back.

The demo serves a loopback model registry that answers the part of MLflow's REST
API the ``rollback`` action uses (read an alias, list versions, move an alias),
and the traffic always comes from the version its ``champion`` alias points at:
it is the deployer. At ``deploy_at_s`` the demo moves ``champion`` to v8, whose
scores are worse than v7's; the worker compares v8 with v7, opens a
``version_regression`` incident, and the shipped ``prediction-drift-rollback``
playbook asks for approval of the rollback. The demo prints the one command that
approves it and approves it itself after ``approve_after_s``; the rollback moves
``champion`` back to v7, v7 serves again, v8's regression clears, the incident
resolves and the playbook's verification records it. Each step the worker
takes is printed from its audit topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer

from agents.cli.simulator import MODEL
from agents.kafka.broker import free_port
from agents.settings import Settings

BASELINE = "7"
WORSE = "8"
ALIAS = "champion"
API = "/api/2.0/mlflow"


@dataclass
class LoopbackRegistry:
    """An MLflow-like model registry on 127.0.0.1: one model, its versions, its aliases."""

    versions: list[str] = field(default_factory=lambda: [BASELINE])
    aliases: dict[str, str] = field(default_factory=lambda: {ALIAS: BASELINE})
    on_move: Callable[[str, str, str], None] | None = None  # alias, from, to
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The tracking URI the worker's rollback talks to."""
        return f"http://127.0.0.1:{self.port}"

    def serving(self) -> str:
        """The version the champion alias points at: what the traffic comes from."""
        return self.aliases[ALIAS]

    def deploy(self, version: str) -> None:
        """Register ``version`` if new and make it the champion."""
        if version not in self.versions:
            self.versions.append(version)
        self._move(ALIAS, version)

    async def start(self) -> None:
        """Serve on 127.0.0.1:``port`` in the running event loop."""
        app = web.Application()
        app.router.add_get(f"{API}/registered-models/alias", self._get_alias)
        app.router.add_post(f"{API}/registered-models/alias", self._set_alias)
        app.router.add_get(f"{API}/model-versions/search", self._search)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _move(self, alias: str, version: str) -> None:
        before = self.aliases.get(alias, "")
        self.aliases[alias] = version
        if self.on_move is not None and before != version:
            self.on_move(alias, before, version)

    async def _get_alias(self, request: web.Request) -> web.Response:
        alias = request.query.get("alias", "")
        if request.query.get("name") != MODEL or alias not in self.aliases:
            return _mlflow_error(f"Registered model alias {alias} not found.")
        return web.json_response({"model_version": {"version": self.aliases[alias]}})

    async def _set_alias(self, request: web.Request) -> web.Response:
        body = await request.json()
        version = str(body.get("version", ""))
        if body.get("name") != MODEL or version not in self.versions:
            return _mlflow_error(f"Model version {version} of {body.get('name')} not found.")
        self._move(str(body.get("alias", "")), version)
        return web.json_response({})

    async def _search(self, request: web.Request) -> web.Response:
        found = [{"version": v, "status": "READY"} for v in self.versions]
        return web.json_response({"model_versions": found})


def _mlflow_error(message: str) -> web.Response:
    body = {"error_code": "INVALID_PARAMETER_VALUE", "message": message}
    return web.json_response(body, status=400)


@dataclass
class Approver:
    """Approves the rollback after a visible pause, unless someone did first."""

    base_url: str
    token: str
    after_s: float
    say: Callable[[str], None]
    announced: set[str] = field(default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch for pending approvals until ``stop``; each is approved after the pause."""
        while not stop.is_set():
            for request in await asyncio.to_thread(self._pending):
                if request["id"] not in self.announced:
                    self.announced.add(request["id"])
                    asyncio.get_running_loop().create_task(self._approve_later(request["id"]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _approve_later(self, approval_id: str) -> None:
        self.say(
            f"approval {approval_id} waits for you: approve it now with\n"
            f"    FIRELINE_API_TOKEN={self.token} FIRELINE_HTTP_PORT="
            f"{self.base_url.rsplit(':', 1)[1]} fireline approvals approve {approval_id}\n"
            f"  or the demo approves it in {self.after_s:.0f} s"
        )
        await asyncio.sleep(self.after_s)
        if any(r["id"] == approval_id for r in await asyncio.to_thread(self._pending)):
            await asyncio.to_thread(self._call, "POST", f"/approvals/{approval_id}/approve")
            self.say(f"approved {approval_id} (as demo)")

    def _pending(self) -> list[dict[str, Any]]:
        try:
            found = self._call("GET", "/approvals?status=pending")["approvals"]
        except OSError:
            return []  # the worker is still starting
        return [a for a in found if isinstance(a, dict)]

    def _call(self, method: str, path: str) -> Any:
        data = json.dumps({"by": "demo"}).encode() if method == "POST" else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"{}")


async def follow_audit(settings: Settings, stop: asyncio.Event, say: Callable[[str], None]) -> None:
    """Print each playbook step the worker records (``fireline.actions``)."""
    consumer = AIOKafkaConsumer(
        settings.topics.actions,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    step = json.loads(record.value or b"{}")
                    say(
                        f"playbook {step.get('playbook')}: {step.get('step')} "
                        f"{step.get('outcome')} - {step.get('detail')}"
                    )
    finally:
        await consumer.stop()

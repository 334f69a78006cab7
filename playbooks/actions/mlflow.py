"""Rolling an MLflow registered model's alias back through the tracking server's REST API.

Only the REST API is used (no mlflow package in the worker): read the alias,
list the model's versions, set the alias to the chosen one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from playbooks.actions.http import HttpReply, json_bytes, request
from playbooks.context import ActionContext

API = "/api/2.0/mlflow"
PAGE = 1000


class MlflowFailure(Exception):
    """The tracking server refused or could not be reached; the message says which call."""


def previous_version(versions: Iterable[int], current: int) -> int | None:
    """The highest version below ``current``, or None when there is none.

    >>> previous_version([1, 2, 3, 5], 5)
    3
    >>> previous_version([4, 5], 4) is None
    True
    """
    return max((v for v in versions if v < current), default=None)


@dataclass(frozen=True)
class MlflowRegistry:
    """The model registry of one tracking server."""

    context: ActionContext
    base_url: str
    token: str | None
    timeout_s: float

    async def alias_version(self, model: str, alias: str) -> int:
        """The version ``alias`` points at."""
        reply = await self._call(
            "GET", "registered-models/alias", params={"name": model, "alias": alias}
        )
        data = self._json(reply, f"reading alias {alias} of {model}")
        try:
            return int(data["model_version"]["version"])
        except (KeyError, TypeError, ValueError):
            raise MlflowFailure(
                f"MLflow answered alias {alias} of {model} without a version"
            ) from None

    async def ready_versions(self, model: str) -> list[int]:
        """Every version of ``model`` whose registration finished."""
        versions: list[int] = []
        token = ""
        while True:
            query = {"filter": f"name='{model}'", "max_results": str(PAGE)}
            if token:
                query["page_token"] = token
            reply = await self._call("GET", "model-versions/search", params=query)
            data = self._json(reply, f"listing the versions of {model}")
            versions += [
                int(v["version"])
                for v in data.get("model_versions", [])
                if v.get("status", "READY") == "READY"
            ]
            token = data.get("next_page_token", "")
            if not token:
                return versions

    async def set_alias(self, model: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        body = {"name": model, "alias": alias, "version": str(version)}
        reply = await self._call("POST", "registered-models/alias", body=json_bytes(body))
        self._json(reply, f"setting alias {alias} of {model} to v{version}")

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> HttpReply:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = f"{self.base_url.rstrip('/')}{API}/{path}"
        return await request(
            self.context, method, url, self.timeout_s, body=body, headers=headers, params=params
        )

    def _json(self, reply: HttpReply, doing: str) -> dict[str, Any]:
        data = reply.json()
        if reply.ok and isinstance(data, dict):
            return data
        problem = reply.describe(redact=[self.token or ""])
        if isinstance(data, dict) and data.get("message"):  # MLflow's own error: say it plainly
            code = " ".join(str(p) for p in (reply.status, data.get("error_code")) if p)
            problem = HttpReply(0, error=f"{data['message']} (HTTP {code})").describe(
                redact=[self.token or ""]
            )
        raise MlflowFailure(f"MLflow at {self.base_url.rstrip('/')} failed {doing}: {problem}")

"""Who is calling the HTTP API, and what their role lets them do.

Tokens are named and given a role; each role can do what the ones before it can:

- ``viewer``: read incidents, silences, approvals, and /readyz's details;
- ``responder``: acknowledge and resolve incidents, add and remove silences;
- ``approver``: approve or reject a step waiting for a human;
- ``admin``: everything (pausing actions, and whatever comes).

A tokens file (``FIRELINE_API_TOKENS_PATH``, YAML or JSON) maps each name to its
role and the SHA-256 of its token, so the file holds no secret::

    alice: {role: approver, sha256: 5e88...}
    dashboards: {role: viewer, sha256: 9f86...}

``FIRELINE_API_TOKEN`` still works: one admin token named ``api``. The name of
the token is who the audit, ``acknowledged_by`` and ``decided_by`` show: never a
name the request body gives. With no token configured at all, reads are open
and changes are refused (as before roles existed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fireline.errors import ConfigError

LEGACY_TOKEN_NAME = "api"


class Role(IntEnum):
    """What a token may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    RESPONDER = 2
    APPROVER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """``viewer``, ``responder``, ..."""
        return self.name.lower()


@dataclass(frozen=True)
class Caller:
    """A verified caller: the token's name and role."""

    name: str
    role: Role


class TokenEntry(BaseModel):
    """One token in the tokens file."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern="^(viewer|responder|approver|admin)$")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="hex SHA-256 of the token")


def token_hash(token: str) -> str:
    """The hex SHA-256 the tokens file keeps of ``token``.

    >>> token_hash("s3cret")[:16]
    '1ec1c26b50d5d3c5'
    """
    return hashlib.sha256(token.encode()).hexdigest()


class AccessPolicy:
    """Maps bearer tokens to callers and answers 401/403 for the rest."""

    def __init__(self, callers: Mapping[str, Caller]) -> None:
        """``callers``: token hash → caller."""
        self._callers = dict(callers)

    @classmethod
    def from_tokens(
        cls, tokens_file: Path | None = None, legacy_admin_token: str | None = None
    ) -> AccessPolicy:
        """From the tokens file (if any) and the single admin token (if any)."""
        callers = load_tokens_file(tokens_file) if tokens_file is not None else {}
        if legacy_admin_token:
            callers[token_hash(legacy_admin_token)] = Caller(LEGACY_TOKEN_NAME, Role.ADMIN)
        return cls(callers)

    @property
    def configured(self) -> bool:
        """Whether any token exists (if none, changes are off and reads are open)."""
        return bool(self._callers)

    def identify(self, request: web.Request) -> Caller | None:
        """The caller whose token the request carries; None without a valid one."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = token_hash(token.strip())
        found = None
        for known, caller in self._callers.items():  # every entry: the time says nothing
            if hmac.compare_digest(known, digest):
                found = caller
        return found

    def lets_read(self, request: web.Request) -> bool:
        """Whether the request may read (a viewer token, or no tokens configured at all)."""
        return not isinstance(self.require(request, Role.VIEWER), web.Response)

    def require(self, request: web.Request, role: Role) -> Caller | web.Response:
        """The caller when their role allows ``role``; else the JSON 401 or 403 to answer.

        Reads (``Role.VIEWER``) are open while no token is configured: the caller
        is then an anonymous viewer.
        """
        if not self.configured:
            if role is Role.VIEWER:
                return Caller("anonymous", Role.VIEWER)
            return _error(
                401,
                "changes are disabled: set FIRELINE_API_TOKENS_PATH or FIRELINE_API_TOKEN",
            )
        if not request.headers.get("Authorization"):
            return _error(401, "missing Authorization: Bearer <api token>")
        caller = self.identify(request)
        if caller is None:
            return _error(401, "wrong API token")
        if caller.role < role:
            return _error(
                403,
                f"token {caller.name!r} is a {caller.role.label}; this needs {role.label} or above",
            )
        return caller


def load_tokens_file(path: Path) -> dict[str, Caller]:
    """Token hash → caller, from a YAML or JSON file; ConfigError naming what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"setting api_tokens_path: cannot read {path}: {exc.strerror}") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"api tokens file {path}: not YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"api tokens file {path}: expected name: {{role, sha256}} entries")
    callers: dict[str, Caller] = {}
    for name, body in data.items():
        try:
            entry = TokenEntry.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigError(f"api tokens file {path}, token {name!r}: {problems}") from None
        if entry.sha256 in callers:
            raise ConfigError(f"api tokens file {path}: {name!r} has the same token as another")
        callers[entry.sha256] = Caller(str(name), Role[entry.role.upper()])
    return callers


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)

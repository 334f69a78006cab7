"""Secrets for actions: read from an env var or a file named in the params, never from YAML.

Playbooks are reviewed and committed; a token pasted into one would leak with
every clone. Params therefore only *name* where the secret lives, and it is read
when the action runs, so a rotated secret takes effect without a reload.
"""

from __future__ import annotations

import os
from pathlib import Path

from fireline.errors import ActionError


def read_secret(env: str | None, file: Path | None, param: str) -> str | None:
    """The secret from ``env`` or ``file``; None when neither is given.

    ``param`` is the params' name prefix (e.g. ``secret`` for ``secret_env`` /
    ``secret_file``), so the error tells the playbook author what to fix.
    """
    if env is not None and file is not None:
        raise ActionError(f"give {param}_env or {param}_file, not both")
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ActionError(
                f"{param}_env names the environment variable {env}, which is unset or empty "
                "in the worker's environment; set it or use a file"
            )
        return value
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ActionError(f"{param}_file {file} cannot be read: {exc.strerror or exc}") from exc
        if not value:
            raise ActionError(f"{param}_file {file} is empty")
        return value
    return None


def require_secret(env: str | None, file: Path | None, param: str) -> str:
    """Like :func:`read_secret`, but the secret is mandatory."""
    value = read_secret(env, file, param)
    if value is None:
        raise ActionError(f"set {param}_env (an environment variable) or {param}_file")
    return value

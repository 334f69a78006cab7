"""``fireline config show``: the effective settings as YAML, secrets masked.

Every setting is printed with the value the worker would run with (environment
over the YAML file over defaults). Secrets print as ``***`` when set: every
``SecretStr`` setting, and any setting named like one (a token, secret, password
or key, but not the ``*_file``/``*_env`` settings that say where one lives).
``--source`` ends each line with where its value came from.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from agents.settings import CONFIG_FILE_ENV, Settings, env_name, setting_paths

MASK = "***"
SECRET_WORDS = frozenset({"token", "tokens", "secret", "secrets", "password", "key", "credentials"})


def add_commands(sub: Any) -> None:
    """Add the ``config`` command group to the CLI's subparsers."""
    config = sub.add_parser("config", help="inspect the effective settings")
    tools = config.add_subparsers(required=True, metavar="TOOL")
    show = tools.add_parser("show", help="the effective settings as YAML, secrets masked")
    show.add_argument(
        "--source", action="store_true", help="end each line with where its value came from"
    )
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    values = effective(settings)
    if not args.source:
        print(yaml.safe_dump(values, sort_keys=False, allow_unicode=True), end="")
        return 0
    config_file = args.config or _env_file()
    document = _read_yaml(config_file) if config_file is not None else {}
    sections = _sections()
    found = Sources(os.environ, document, str(config_file))
    print("\n".join(_annotated(values, found, sections, ())))
    return 0


def effective(model: BaseModel) -> dict[str, Any]:
    """The settings as plain data (JSON types), each set secret replaced by ``***``."""
    dumped = model.model_dump(mode="json")
    return {name: _masked(name, getattr(model, name), dumped[name]) for name in dumped}


def _masked(name: str, value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel):
        return effective(value)
    if value is None:
        return None
    secret_name = not name.endswith(("_file", "_env")) and SECRET_WORDS & set(name.split("_"))
    return MASK if isinstance(value, SecretStr) or secret_name else dumped


class Sources:
    """Where a setting's value came from: its variable, a section's JSON variable, the file."""

    def __init__(self, environ: Mapping[str, str], document: Any, file: str) -> None:
        self.environ = {name.upper() for name in environ}
        self.document = document
        self.file = file

    def of(self, path: tuple[str, ...]) -> str:
        """``env NAME``, ``file PATH`` or ``default``, by the settings' precedence."""
        for depth in range(len(path), 0, -1):
            name = env_name(".".join(path[:depth]))
            if name in self.environ:
                return f"env {name}"
        node = self.document
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return "default"
            node = node[part]
        return f"file {self.file}"


def _annotated(
    values: Mapping[str, Any], found: Sources, sections: set[str], path: tuple[str, ...]
) -> list[str]:
    lines = []
    pad = "  " * len(path)
    for key, value in values.items():
        where = (*path, key)
        if ".".join(where) in sections and isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines += _annotated(value, found, sections, where)
        else:  # JSON is YAML: one flow value per line leaves room for the comment
            lines.append(f"{pad}{key}: {json.dumps(value)}  # {found.of(where)}")
    return lines


def _sections() -> set[str]:
    paths = setting_paths()
    return {parent for parent in paths if any(p.startswith(parent + ".") for p in paths)}


def _env_file() -> Path | None:
    value = os.environ.get(CONFIG_FILE_ENV)
    return Path(value) if value else None


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}

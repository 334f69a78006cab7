"""Load every playbook in a directory, reporting each problem with file and line.

A directory loads all-or-nothing: one bad file rejects the new set and the caller
keeps the previous good one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fireline.errors import PlaybookValidationError
from playbooks.registry import ActionRegistry
from playbooks.schema import Playbook, StepError

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Located:
    """A YAML value with the (1-based) line and column of every sub-path."""

    value: Any
    marks: dict[tuple[str | int, ...], tuple[int, int]]

    def place(self, loc: tuple[str | int, ...]) -> tuple[int, int]:
        """The deepest known position along ``loc``."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.marks:
                return self.marks[loc[:end]]
        return (1, 1)


def playbook_files(directory: Path) -> list[Path]:
    """The playbook files of a directory, sorted, hidden files skipped."""
    return sorted(
        p for p in directory.iterdir() if p.suffix in SUFFIXES and not p.name.startswith(".")
    )


def load_directory(directory: Path, registry: ActionRegistry) -> list[Playbook]:
    """All playbooks of ``directory``, or PlaybookValidationError listing every problem."""
    if not directory.is_dir():
        raise PlaybookValidationError([f"{directory}: playbooks directory does not exist"])
    problems: list[str] = []
    loaded: list[Playbook] = []
    seen: dict[str, Path] = {}
    for path in playbook_files(directory):
        playbook, file_problems = load_file(path, registry)
        problems.extend(file_problems)
        if playbook is None:
            continue
        if playbook.name in seen:
            problems.append(
                f"{path}:1:1: name {playbook.name!r} is also used by {seen[playbook.name]}"
            )
            continue
        seen[playbook.name] = path
        loaded.append(playbook)
    if problems:
        raise PlaybookValidationError(problems)
    return loaded


def load_file(path: Path, registry: ActionRegistry) -> tuple[Playbook | None, list[str]]:
    """One playbook file: the playbook, or None and its problems as ``file:line:col: msg``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}:1:1: cannot read: {exc}"]
    try:
        document = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [f"{path}:{line}:{col}: YAML syntax: {exc.problem or exc}"]
    except yaml.reader.ReaderError as exc:  # a control character; only its offset is known
        line, col = _line_col(text, exc.position)
        return None, [f"{path}:{line}:{col}: {exc.reason} (character #x{exc.character:04x})"]
    if not isinstance(document.value, dict):
        return None, [f"{path}:1:1: expected a mapping with name, match and steps"]
    try:
        playbook = Playbook.model_validate(document.value, context={"registry": registry})
    except ValidationError as exc:
        located = sorted(_describe(document, exc))  # in the order of the file
        return None, [f"{path}:{line}:{col}: {text}" for line, col, text in located]
    return playbook, []


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _describe(document: _Located, exc: ValidationError) -> Iterator[tuple[int, int, str]]:
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, StepError):
            # Each of the step's problems at its own place, not the step as a whole.
            for inner, message in cause.located:
                yield _placed(document, (*loc, *inner), message)
        else:
            yield _placed(document, loc, error["msg"])


def _placed(document: _Located, loc: tuple[str | int, ...], message: str) -> tuple[int, int, str]:
    line, col = document.place(loc)
    field = ".".join(str(p) for p in loc) or "<playbook>"
    return line, col, f"{field}: {message}"


def _compose(text: str) -> _Located:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    marks: dict[tuple[str | int, ...], tuple[int, int]] = {}
    value = _to_python(node, (), marks) if node is not None else None
    return _Located(value, marks)


def _to_python(
    node: yaml.Node,
    path: tuple[str | int, ...],
    marks: dict[tuple[str | int, ...], tuple[int, int]],
) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader(" ").construct_object(key_node)  # scalars only
            out[key] = _to_python(value_node, (*path, str(key)), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), marks) for i, item in enumerate(node.value)]
    return yaml.SafeLoader(" ").construct_object(node)

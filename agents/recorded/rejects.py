"""What a reader does with a record that broke its contract: count it, or stop at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fireline.errors import ConfigError, EventError

MAX_REJECTS_KEPT = 20  # the first few rejects are shown; the rest are only counted


class OnReject(Protocol):
    """Told where a bad record was (``file:line``, ``topic[partition]@offset``) and why."""

    def __call__(self, where: str, error: EventError) -> None: ...  # noqa: D102


@dataclass
class Rejects:
    """Records that broke their contract: how many, and the first few with where and why.

    The backtest's way: as the worker would dead-letter them, and the rest go on.
    """

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def __call__(self, where: str, error: EventError) -> None:
        """Count one reject; keep its description if there is room."""
        self.count += 1
        if len(self.examples) < MAX_REJECTS_KEPT:
            self.examples.append(describe(where, error))


def stop_at_first(where: str, error: EventError) -> None:
    """The replay's way: the first bad record ends the run, naming where it was and why."""
    raise ConfigError(describe(where, error))


def describe(where: str, error: EventError) -> str:
    """``events.jsonl:6: wrong_type: MetricEvent: value: ...``."""
    return f"{where}: {error.reason}: {error.detail}"

"""Commands to the worker that watches a model, sent in order with the model's predictions.

A model's version comparison lives on the worker that owns the model's
partition of the prediction topic, so a human's command about it (accept a
version early, from the API or Slack) is published to that topic, keyed by the
model name like its predictions, and applied by that worker in order with them.
Its JSON starts with :data:`COMMAND_PREFIX`, which no prediction event does:
the handler sets commands apart with one ``startswith`` per record.

Whoever may write to the prediction topic can therefore accept a version; it
can as well log predictions that make the version look good. Restrict writes
to that topic to the services that serve the model (Kafka ACLs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from agents.pipelines.ingest import RawRecord

COMMAND_PREFIX = b'{"fireline_command":'


class ModelCommand(BaseModel):
    """Accept ``version`` of ``model`` as its baseline now (the figures are fine)."""

    fireline_command: Literal["accept"] = "accept"  # first: its JSON starts with COMMAND_PREFIX
    model: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=200)
    by: str = Field(min_length=1, max_length=200)
    at: float = Field(description="When it was asked for, epoch seconds.")

    def to_record(self) -> tuple[bytes, bytes, dict[str, bytes]]:
        """(key, value, headers) for the prediction topic: keyed by model, as predictions are."""
        return self.model.encode(), self.model_dump_json().encode(), {}


def split_commands(
    records: Sequence[RawRecord],
) -> list[tuple[Sequence[RawRecord], ModelCommand | None]]:
    """The batch as runs of events, each followed by the command that came after it, in order.

    A batch without commands is one run, as it came. A record that looks like a
    command and is not one stays an event, so validation dead-letters it with its
    reason.
    """
    runs: list[tuple[Sequence[RawRecord], ModelCommand | None]] = []
    start = 0
    for index, record in enumerate(records):
        value = record.value
        if value is None or not value.startswith(COMMAND_PREFIX):
            continue
        try:
            command = ModelCommand.model_validate_json(value)
        except ValidationError:
            continue
        runs.append((records[start:index], command))
        start = index + 1
    if not runs:
        return [(records, None)]
    if start < len(records):
        runs.append((records[start:], None))
    return runs

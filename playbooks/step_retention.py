"""Pruning the playbook-steps table: a step's record outlives every redelivery of its request.

The table (step key → :class:`~playbooks.steps.StepState`) is what stops a
redelivered run request from acting twice, so a record may only go once no
request can come back for it: ``fireline.action-requests`` keeps its records
for ``ACTION_REQUEST_RETENTION_S`` and a step record is kept for at least
``retention_s`` (more, by the settings' rule) after its last write. A step still
waiting for a human is kept until it is decided (or its approval expires).
Records written before records carried a time are stamped on the first sweep
and age from then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playbooks.steps import StepState

if TYPE_CHECKING:  # the engine's import is ~1 s; the settings read this module's constant
    from playbooks.engine import DurableMap

ACTION_REQUEST_RETENTION_S = 2 * 24 * 3600.0  # fireline.action-requests' retention.ms


@dataclass(frozen=True)
class Sweep:
    """What one pass over the table did."""

    pruned: int
    stamped: int  # older records given a time to age from


def playbook_of(step_key: bytes) -> str:
    """The playbook in a step key (``incident|revision|playbook|index``).

    >>> playbook_of(b"inc-1|3|rollback|0")
    'rollback'
    """
    return step_key.rsplit(b"|", 2)[-2].decode()


def sweep(
    done: DurableMap,
    owns: Callable[[str], bool],
    now: float,
    retention_s: float,
    limit: int = 5000,
) -> Sweep:
    """Tombstone up to ``limit`` records of the playbooks this worker ``owns`` older than retention."""
    pruned = stamped = 0
    for key in done.all_keys():
        if pruned >= limit or not owns(playbook_of(key)):
            continue
        raw = done.get(key)
        if raw is None:
            continue
        state = StepState.decode(raw)
        if state.waits_for_approval:
            continue
        if state.at is None:
            done.put_soon(key, StepState(outcome=state.outcome, at=now).encode())
            stamped += 1
        elif now - state.at > retention_s:
            done.delete_soon(key)
            pruned += 1
    return Sweep(pruned, stamped)

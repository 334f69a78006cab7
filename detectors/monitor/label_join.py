"""LabelJoin: late labels matched to their predictions, with a bounded wait."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from fireline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Pending:
    """What an outcome needs of a prediction that waits for its label."""

    model_version: str
    prediction: float | str | None
    timestamp: float


class LabelJoin:
    """Predictions of one model waiting for labels, by ``prediction_id``.

    Bounded both ways: at most ``max_pending`` predictions wait (the oldest is
    dropped first) and none longer than ``max_wait_s`` of event time. Dropped and
    unmatched counts are kept for the monitor to report.
    """

    def __init__(self, max_pending: int = 100_000, max_wait_s: float = 7 * 86_400.0) -> None:
        if max_pending < 1:
            raise ConfigError(f"max_pending must be at least 1; got {max_pending}.")
        if not max_wait_s > 0:
            raise ConfigError(f"max_wait_s must be positive; got {max_wait_s}.")
        self.max_pending = max_pending
        self.max_wait_s = max_wait_s
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self.expired = 0
        self.unmatched = 0
        self.matched = 0

    def add(self, prediction_id: str, pending: Pending) -> None:
        """Let a prediction wait for its label."""
        self._pending[prediction_id] = pending
        self._pending.move_to_end(prediction_id)
        if len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.expired += 1

    def match(self, prediction_id: str, now: float) -> Pending | None:
        """The waiting prediction for a label arriving at ``now``, if still there."""
        self._expire(now)
        found = self._pending.pop(prediction_id, None)
        if found is None:
            self.unmatched += 1
        else:
            self.matched += 1
        return found

    def _expire(self, now: float) -> None:
        horizon = now - self.max_wait_s
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.timestamp >= horizon:
                break
            self._pending.popitem(last=False)
            self.expired += 1

    def __len__(self) -> int:
        return len(self._pending)

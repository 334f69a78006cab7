"""The domain classifier's fits in a thread, with the outcomes of fitting them inline.

A replay has a second core with nothing to do while the monitors work, and a fit
(~0.25 s of scikit-learn, which releases the GIL for most of it) can run there.
But an inline fit's outcome is applied where it was prepared: its finding takes
its place among its batch's, and the classifier's alarm and hysteresis are what
the next fit's preparation reads. :class:`OrderedFits` keeps both:

- a fit submitted comes back as a :class:`HeldFit`, which stands where the
  finding would be (it has its event time, so a sort places it) until the
  outcome is in; whoever prints the findings holds back everything after it
  (:meth:`~detectors.monitor.prediction_log.PredictionLogMonitor.process`);
- before another fit is prepared (of any monitor: a new version takes over the
  classifier of the one before), the one in flight is settled, waiting for it
  if it is not in yet: so at most one runs, and outcomes apply in order.

A fit runs 20,000 events apart by default, so the wait is rare: the last fit of a
replay, and a new version taking over inputs while one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future

from detectors.drift.domain_classifier import Outcome
from detectors.monitor.records import Finding

__all__ = ["HeldFit", "OrderedFits", "settled"]


class HeldFit:
    """A fit in flight, in the place of the findings its outcome gives."""

    __slots__ = ("_apply", "_found", "_future", "timestamp")

    def __init__(
        self,
        timestamp: float,
        future: Future[Outcome],
        apply: Callable[[Callable[[], Outcome]], list[Finding]],
    ) -> None:
        """``apply`` is handed the outcome's getter (it raises what the fit raised)."""
        self.timestamp = timestamp  # the event time its finding would have
        self._future = future
        self._apply = apply
        self._found: list[Finding] | None = None

    def settle(self, wait: bool = True) -> list[Finding] | None:
        """The findings, the outcome applied (once); None if not in and not ``wait``."""
        if self._found is None:
            if not wait and not self._future.done():
                return None
            self._found = self._apply(self._future.result)
        return self._found


class OrderedFits:
    """Runs fits in ``executor`` one at a time; each outcome applies as an inline fit's would."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._running: HeldFit | None = None

    def submit(
        self,
        job: Callable[[], Outcome],
        timestamp: float,
        apply: Callable[[Callable[[], Outcome]], list[Finding]],
    ) -> HeldFit:
        """Run ``job`` (settled first: the fit before it); ``apply`` its outcome on settling."""
        self.settle()
        self._running = HeldFit(timestamp, self.executor.submit(job), apply)
        return self._running

    def settle(self) -> None:
        """Apply the outcome of the fit in flight, if any, waiting for it.

        Call it before reading or changing what a fit's outcome changes: before
        preparing a fit, taking a classifier over, or saving a monitor.
        """
        if self._running is not None:
            self._running.settle()
            self._running = None


def settled(found: Iterable[Finding | HeldFit]) -> list[Finding]:
    """``found`` with each held fit replaced by its findings (waiting for it)."""
    out: list[Finding] = []
    for item in found:
        if isinstance(item, HeldFit):
            out += item.settle() or []
        else:
            out.append(item)
    return out

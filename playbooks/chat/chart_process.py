"""Evidence charts drawn in a child process, off the worker's GIL.

Drawing a chart costs ~150 ms of CPU (matplotlib's Agg canvas and the PNG
encoder, mostly Python). In a thread of the worker it holds the GIL against
the event loop for that long, for every incident: at a spike of incidents the
worker fell behind its input. One child process per worker draws them instead,
on another core; it starts with the first chart (spawned, not forked: the
worker runs threads) and ends with the worker, also when the worker is killed
(it holds its own end of the task queue, so it would never read the queue's
end: it watches its parent instead).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fireline.errors import ChartError
from fireline.incident import Evidence
from playbooks.chat.chart import render_chart


class ChartProcess:
    """Renders evidence charts (:func:`~playbooks.chat.chart.render_chart`) in a child process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # event loops of several threads may share it

    async def render(self, evidence: Evidence, title: str = "") -> bytes:
        """The chart as PNG bytes; ChartError when it cannot be drawn.

        A child that died (killed, out of memory) is replaced once, for the next chart.
        """
        pool = self._running_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, render_chart, evidence, title
            )
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise ChartError(f"the chart process ended: {exc}") from exc

    def close(self) -> None:
        """Stop the child (a later chart starts another)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _running_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


PARENT_CHECK_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """In the child: exit once the worker that started it is gone (re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="fireline-chart-parent", daemon=True).start()


CHARTS = ChartProcess()
"""The worker's chart process (one per process, started by the first chart)."""

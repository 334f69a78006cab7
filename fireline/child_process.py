"""A spawned child process that runs picklable jobs off the caller's GIL and exits with it.

CPU-bound Python work in a thread of the worker (a chart, a classifier's fit)
holds the GIL against its event loop; a child process does it on another core.
The child is spawned, not forked (the worker runs threads), starts with the
first job (or :meth:`ChildProcess.start`), runs ``preload`` first (imports that
would otherwise hold up the first job), and ends with its parent, also when the
parent is killed: it holds its own end of the task queue, so it would never see
that queue close, and watches its parent instead. A child that died (killed, out
of memory) fails the jobs it had (``BrokenProcessPool``); the next job starts a
new one.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

PARENT_CHECK_S = 1.0


class ChildProcess(Executor):
    """One spawned child process running jobs in order (an :class:`Executor`)."""

    def __init__(self, name: str, preload: Callable[[], object] | None = None) -> None:
        """``name`` names the child's threads; ``preload`` (picklable) runs first in every child."""
        self.name = name
        self.preload = preload
        self._pool: ProcessPoolExecutor | None = None
        self._preloaded: Future[object] | None = None
        self._lock = threading.Lock()  # event loops of several threads may share it

    def start(self) -> Future[object] | None:
        """Start the child now (its ``preload`` running); the preload's future, if any."""
        self._running_pool()
        return self._preloaded

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in the child; a child found dead is replaced first."""
        pool = self._running_pool()
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self._discard(pool)
            return self._running_pool().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the child (a later job starts another)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def close(self) -> None:
        """Stop the child, dropping the jobs not started."""
        self.shutdown(wait=True, cancel_futures=True)

    @property
    def pids(self) -> list[int]:
        """The process id of the running child (empty before it starts)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) if pool is not None else None
        return list(processes or ())

    def _running_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_exit_with_parent,
                    initargs=(os.getpid(), self.name),
                )
                # Submitting spawns the child: the preload runs ahead of any job.
                self._preloaded = self._pool.submit(self.preload or _nothing)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


def _nothing() -> None:
    """What a child without a preload runs first (submitting is what spawns it)."""


def _exit_with_parent(parent: int, name: str) -> None:
    """In the child: exit once the process that started it is gone (re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name=f"fireline-{name}-parent", daemon=True).start()

"""A child process must not outlive its worker: the check shared by the chart and fit children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def assert_child_exits_with_killed_worker(code: str, what: str) -> None:
    """Run ``code`` as a worker that prints its child's pid and SIGKILLs itself; the child must go.

    ``what`` names the child in the failure message.
    """
    # The child shares the worker's stdout: run() returns once both have closed it.
    worker = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=90
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr
    child = int(worker.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}"), f"{what} {child} outlived its worker"

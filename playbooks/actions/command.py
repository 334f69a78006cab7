"""Running a local command for an action: argv (no shell), input on stdin, a timeout.

The command gets its own process group, so a timeout stops whatever it started
too, not only the direct child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fireline.errors import ActionError

TAIL_CHARS = 400


@dataclass(frozen=True)
class Finished:
    """How a command ended: ``returncode`` is None when it was killed on timeout."""

    returncode: int | None
    stdout: bytes
    stderr: bytes

    def tails(self) -> str:
        """The last lines of stdout and stderr, for the action result."""
        parts = []
        for name, data in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = data.decode("utf-8", "replace").strip()
            if text:
                cut = "…" if len(text) > TAIL_CHARS else ""
                parts.append(f"{name}: {cut}{text[-TAIL_CHARS:]}")
        return "; ".join(parts)


async def run_command(
    argv: Sequence[str],
    stdin: bytes,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run ``argv`` to completion or until ``timeout_s``; ActionError if it cannot start."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise ActionError(f"command {argv[0]!r} cannot be started: {exc.strerror or exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = await process.communicate()
        return Finished(None, stdout, stderr)
    return Finished(process.returncode, stdout, stderr)

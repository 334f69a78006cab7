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
KEEP_BYTES = 64 * 1024
READ_GRACE_S = 5.0


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
    assert process.stdin and process.stdout and process.stderr  # all three are pipes
    out, err = bytearray(), bytearray()
    # Own readers rather than communicate(): what was read survives a timeout.
    readers = asyncio.gather(_tail(process.stdout, out), _tail(process.stderr, err))
    returncode: int | None = None
    try:
        returncode = await asyncio.wait_for(_feed_and_wait(process, stdin), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
    # A descendant that left the group may still hold the pipes open: wait a little only.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(readers, READ_GRACE_S)
    return Finished(returncode, bytes(out), bytes(err))


async def _feed_and_wait(process: asyncio.subprocess.Process, stdin: bytes) -> int:
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it may not read stdin
        process.stdin.write(stdin)
        await process.stdin.drain()
        process.stdin.close()
    return await process.wait()


async def _tail(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into += chunk
        del into[:-KEEP_BYTES]  # only the tail is reported; bound the memory

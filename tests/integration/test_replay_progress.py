"""On a terminal, `fireline replay` shows its progress bar by itself; stdout stays the data."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def write_series(path: Path, rows: int) -> None:
    """A ``timestamp,value`` series of ``rows`` rows."""
    lines = [f"{i},{50 + (i % 7) * 0.3:.1f}" for i in range(rows)]
    path.write_text("timestamp,value\n" + "\n".join(lines) + "\n")


def test_replay__on_a_terminal_the_bar_shows_by_itself_and_stdout_stays_clean(tmp_path):
    source = tmp_path / "in.csv"
    write_series(source, 200_000)  # ~4 s of replay here: well past the bar's 1 s delay
    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:
        # Read while the replay runs: a pty holds little, and once its last writer is
        # gone Linux may answer EIO before the rest was read.
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the writer is gone and everything was read
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "agents.cli", "replay", "metrics", str(source)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    terminal = b"".join(chunks)
    assert process.returncode == 0, terminal.decode()
    assert process.stdout.count(b"\n") == 200_001 and b"\r" not in process.stdout
    assert b"\rreplay metrics [" in terminal
    assert terminal.rstrip().endswith(b"100% 200,000/200,000 rows")

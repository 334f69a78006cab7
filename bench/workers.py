"""`fireline run` worker processes for the broker benches (latency, scale-out, soak).

A bench starts workers on its own topics (throughput.TOPICS), waits for a
positive sign that each is ready (/readyz answers 200), reads what it needs
from the worker's /metrics and from /proc (CPU seconds, RSS), and stops every
worker it started, whatever happens. Each worker's log is kept in a file, and its
tail is printed when a worker fails, so a bench that cannot start says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from throughput import TOPICS

from agents.kafka.broker import free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Short group timeouts: Tansu answers a join after half the session timeout.
BENCH_ENV = {
    "FIRELINE_WORKER__SESSION_TIMEOUT_S": "3",
    "FIRELINE_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
}


class WorkerFailed(RuntimeError):
    """A bench worker exited or never became ready; the message ends with its log."""


class Worker:
    """One `fireline run` process on the bench topics, in its own process group."""

    def __init__(self, broker_url: str, app_id: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"fireline-{app_id}-"))
        self.log_path = self.dir / "worker.log"
        self.env = {
            **os.environ,
            **BENCH_ENV,
            "FIRELINE_BROKER_URL": broker_url,
            "FIRELINE_APP_ID": app_id,
            "FIRELINE_DATA_DIR": str(self.dir),
            "FIRELINE_HTTP_HOST": "127.0.0.1",
            "FIRELINE_HTTP_PORT": str(self.port),
            **{f"FIRELINE_TOPICS__{k.upper()}": v for k, v in TOPICS.model_dump().items()},
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The worker's HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Launch the worker (it logs at info level to ``log_path``)."""
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli.main", "run", "--loglevel", "info"],
            env=self.env,
            stdout=subprocess.DEVNULL,  # the console chat sink prints each incident here
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout_s: float = 300.0) -> float:
        """Wait until /readyz answers 200 (group joined, topics there); return the seconds."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (OSError, urllib.error.HTTPError):
                pass  # not listening yet, or 503: not ready
            time.sleep(0.25)
        raise WorkerFailed(f"worker not ready in {timeout_s:.0f} s\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise WorkerFailed if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise WorkerFailed(f"worker exited with {self.process.returncode}\n{self.log_tail()}")

    def metrics(self) -> str:
        """The /metrics text ("" when it cannot be read)."""
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def total(self, name: str, text: str | None = None) -> float:
        """The sum of a metric over all its label sets."""
        text = self.metrics() if text is None else text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((f"{name}{{", f"{name} "))
        )

    def histogram(self, name: str) -> list[tuple[float, float]]:
        """A Prometheus histogram as (upper bound, cumulative count) pairs."""
        buckets = []
        for line in self.metrics().splitlines():
            if line.startswith(f"{name}_bucket{{"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
        return buckets

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker process so far (/proc/PID/stat)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def rss_mb(self) -> float:
        """The worker's resident memory now, in MB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the worker's log."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (the worker commits and checkpoints), SIGKILL if it hangs."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:  # e.g. stuck on a broker that is gone
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def format_histogram(buckets: list[tuple[float, float]]) -> str:
    """``count n; ≤0.1: a, ≤0.25: b, ...`` without the empty tail."""
    if not buckets:
        return "empty"
    count = buckets[-1][1]
    shown = []
    for bound, cumulative in buckets:
        shown.append(f"≤{bound:g}: {cumulative:.0f}")
        if cumulative >= count:
            break
    return f"count {count:.0f}; " + ", ".join(shown)

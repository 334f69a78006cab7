"""Debian's Prometheus and Alertmanager on loopback, over an exporter the test controls.

Each runs in its own process group with its data in a temporary directory, on
free ports; :func:`daemon` always stops it (SIGTERM, then SIGKILL) and its log
is kept for failure messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from prometheus_client.parser import text_string_to_metric_families

from agents.kafka.broker import free_port


def tool(*names: str, package: str) -> str:
    """The first of ``names`` on PATH (Debian renames some binaries)."""
    for name in names:
        if path := shutil.which(name):
            return path
    raise AssertionError(
        f"{names[0]} is required (Debian package {package!r}; scripts/system-deps installs it)"
    )


class Exporter:
    """A /metrics endpoint serving one gauge, ``fireline_test_errors{service=...}``, to flip."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.value = 0.0
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                exporter.scrapes += 1
                body = (
                    "# TYPE fireline_test_errors gauge\n"
                    f'fireline_test_errors{{service="{exporter.service}"}} {exporter.value}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Daemon:
    """A started tool: its HTTP address and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path``; (0, "") while nothing listens yet."""
        if self.process.poll() is not None:
            raise AssertionError(f"{self.process.args!r} exited:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/-/ready")[0] == 200

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` with these labels on its /metrics."""
        _, text = self.get("/metrics")
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def daemon(command: list[str], port: int, log_path: Path) -> Iterator[Daemon]:
    """Run ``command`` in its own process group until the block ends."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield Daemon(process, port, log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


RULES = """\
groups:
  - name: fireline-test
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: fireline_test_errors > 0
        for: 0s
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.service }} fails requests"}
"""


def prometheus(
    exporter: Exporter, alertmanager_port: int, workdir: Path
) -> AbstractContextManager[Daemon]:
    """Prometheus scraping ``exporter`` every second and alerting ``alertmanager_port``."""
    (workdir / "rules.yml").write_text(RULES)
    (workdir / "prometheus.yml").write_text(
        f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{workdir / "rules.yml"}]
scrape_configs:
  - job_name: exporter
    static_configs: [{{targets: ["{exporter.address}"]}}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{alertmanager_port}"]}}]
"""
    )
    port = free_port()
    command = [
        tool("prometheus", package="prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Re-send firing alerts every second (default 1m): the first send may come
        # before Alertmanager listens.
        "--rules.alert.resend-delay=1s",
    ]
    return daemon(command, port, workdir / "prometheus.log")


def alertmanager(
    webhook_url: str, token: str, port: int, workdir: Path
) -> AbstractContextManager[Daemon]:
    """Alertmanager sending every alert to ``webhook_url`` with the bearer ``token``.

    Group timings are seconds (minutes in production, see docs/alerts.md), and
    ``repeat_interval`` re-sends a firing alert every few seconds, as fireline
    needs it re-sent within ``incidents.signal_expiry_s``.
    """
    (workdir / "alertmanager.yml").write_text(
        f"""\
route:
  receiver: fireline
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: fireline
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {token}}}
"""
    )
    command = [
        tool("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager"),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single instance
    ]
    return daemon(command, port, workdir / "alertmanager.log")

"""A real ``mlflow server`` (SQLite backend) in its own process group, for rollback tests."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from agents.kafka.broker import free_port
from agents.kafka.processes import stop_process_group
from tests.integration.support import wait_for


class MlflowServer:
    """Starts the tracking server and talks to its REST API (the test's own, independent client)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "mlflow.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0) -> MlflowServer:
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--default-artifact-root", str(self.workdir / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # stop_process_group takes its workers down too
            )
        wait_for(self._ready, timeout_s, f"mlflow server on {self.url}; log:\n{self.log()}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, timeout_s=10.0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"mlflow server exited with {self.process.returncode}:\n{self.log()}"
            )
        try:
            self.call("GET", "registered-models/search", {"max_results": 1})
        except (OSError, urllib.error.URLError):
            return False
        return True

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.url}/api/2.0/mlflow/{path}"
        data = None
        if method == "GET" and body:
            url += "?" + urllib.parse.urlencode(body)
        elif body is not None:
            data = json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def register(self, model: str, versions: int, alias: str | None = None) -> None:
        """A registered model with versions 1..n (no artifacts) and ``alias`` on the last."""
        self.call("POST", "registered-models/create", {"name": model})
        for n in range(1, versions + 1):
            self.call(
                "POST",
                "model-versions/create",
                {"name": model, "source": f"s3://models/{model}/{n}"},
            )
        if alias:
            self.set_alias(model, alias, versions)

    def set_alias(self, model: str, alias: str, version: int) -> None:
        self.call(
            "POST",
            "registered-models/alias",
            {"name": model, "alias": alias, "version": str(version)},
        )

    def alias_version(self, model: str, alias: str) -> str:
        reply = self.call("GET", "registered-models/alias", {"name": model, "alias": alias})
        return str(reply["model_version"]["version"])

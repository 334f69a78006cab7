"""The README's first command: the demo shows the whole loop and Ctrl-C leaves nothing behind;
a worker that cannot run or dies ends the demo with one line saying why."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.kafka.broker import free_port
from tests.integration.support import processes_mentioning, wait_for

pytestmark = pytest.mark.integration


def demo_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env["FIRELINE_HTTP_PORT"] = str(port)
    env["FIRELINE_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return env


def start_demo(
    tmp_path: Path, env: dict[str, str], stderr: int = subprocess.STDOUT
) -> subprocess.Popen[str]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "demo", "--spike-at", "8"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def test_demo__shows_the_incident_message_and_ctrl_c_stops_everything(tmp_path):
    demo = start_demo(tmp_path, demo_env(tmp_path, free_port()))
    workdir = tmp_path / "cwd"
    try:
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(demo.stdout.readline, "")), daemon=True
        )
        reader.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("[console chat" in line for line in lines):
            assert demo.poll() is None, "".join(lines)
            time.sleep(0.2)
        output = "".join(lines)
        assert "[console chat → #fireline-alerts]" in output, output
        broker = re.search(r"embedded broker on 127\.0\.0\.1:(\d+)", output)
        assert broker, output
        # The worker keeps its data in a directory of its own under FIRELINE_DATA_DIR.
        assert [p.parent.name[:5] for p in (tmp_path / "data").glob("*/fireline-data")] == ["demo-"]

        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(30) == 0
        reader.join(5)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()
    output = "".join(lines)
    # The spike shows in the service's latency metric and in the model's prediction
    # log (latency_ms); whichever detector is first opens the one incident of model fraud.
    assert re.search(r":rotating_light: \[CRITICAL\] Latency spike on fraud(-api)?\n", output)
    assert re.search(r"Subject: (fraud-api / )?model fraud v7\n", output), output
    assert re.search(  # a series to paste into Prometheus, from either detector
        r'latency_ms\{model="fraud"(,model_version="7",service="fraud-api")?\}: '
        r"observed \d+\.\d vs normal 4\d\.\d",
        output,
    ), output
    assert "injecting a 8x latency spike" in output
    assert output.rstrip().endswith("fireline demo: stopped.")
    # Waited for, not slept on: the condition itself is the positive signal.
    wait_for(
        lambda: processes_mentioning(f"127.0.0.1:{broker.group(1)}") == [],
        10,
        "the demo's broker and worker to be gone",
    )
    assert list(workdir.iterdir()) == []  # nothing left in the user's working directory
    assert list((tmp_path / "data").iterdir()) == []  # nor of the demo's data


def test_demo__a_busy_http_port_is_one_line_naming_the_setting(tmp_path):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        demo = start_demo(tmp_path, demo_env(tmp_path, port), stderr=subprocess.PIPE)
        out, err = demo.communicate(timeout=60)
    assert demo.returncode == 2
    assert out == ""  # nothing was started
    (line,) = err.splitlines()
    assert re.fullmatch(
        rf"fireline: error: port {port} is already in use \(another fireline\?\); "
        r"set FIRELINE_HTTP_PORT to a free port, e\.g\. FIRELINE_HTTP_PORT=\d+",
        line,
    ), line
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_demo__a_worker_that_dies_ends_the_demo_with_exit_1_and_why(tmp_path):
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "demo", "--spike-at", "8"],
            env=demo_env(tmp_path, free_port()),
            cwd=tmp_path,
            stdout=out,
            stderr=err,
        )
    try:
        workers: list[int] = []

        def worker_started() -> bool:
            assert demo.poll() is None, out_path.read_text() + err_path.read_text()
            workers[:] = [
                pid
                for pid in child_pids(demo.pid)
                if b"run" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ]
            return bool(workers) and "worker starting" in out_path.read_text()

        wait_for(worker_started, 60, "the demo's worker process")
        os.kill(workers[0], signal.SIGKILL)
        assert demo.wait(60) == 1
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert out_path.read_text().rstrip().endswith("fireline demo: stopped.")
    last = err_path.read_text().splitlines()[-1]
    assert last == "fireline demo: error: the worker was killed by SIGKILL"
    assert list((tmp_path / "data").iterdir()) == []


def test_demo_bad_deploy__a_worse_version_is_caught_rolled_back_verified_and_resolved(tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    demo = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "demo", "--scenario", "bad-deploy"],
        env=demo_env(tmp_path, free_port()),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    verified = "prediction-drift-rollback: verify ok"
    try:
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(demo.stdout.readline, "")), daemon=True
        )
        reader.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any(verified in line for line in lines):
            assert demo.poll() is None, "".join(lines)
            time.sleep(0.5)
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
        reader.join(5)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        demo.stdout.close()
    output = "".join(lines)
    order = [
        "registry: fraud@champion v7 -> v8 (deploy)",
        "Version regression on fraud",
        "waits for you: approve it now with",
        "registry: fraud@champion v8 -> v7 (rollback); v7 serves now",
        "prediction-drift-rollback: rollback ok - fraud@champion: v8 → v7",
        "[RESOLVED] Version regression on fraud",
        verified,
    ]
    positions = [output.find(text) for text in order]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), output
    assert "prediction-drift-rollback: rollback pending_approval" in output
    assert "(as demo)" in output  # printed once the API answered: the rollback may be first
    assert re.search(r"fireline approvals approve apr-\w+\n", output), output
    assert "fraud v8 is worse than v7" in output
    # The service's metrics are plain noise all along: no incident of theirs (a new
    # series' moving average breaking its young range once paged in CI).
    assert "Metric anomaly" not in output, output
    assert "Likely cause: fraud v8 went live (was v7)" in output
    assert output.rstrip().endswith("fireline demo: stopped.")
    assert list((tmp_path / "data").iterdir()) == []

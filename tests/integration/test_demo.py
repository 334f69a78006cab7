"""The README's first command: the demo shows the whole loop and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.kafka.broker import free_port
from tests.integration.support import processes_mentioning

pytestmark = pytest.mark.integration


def test_demo__shows_the_incident_message_and_ctrl_c_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env["FIRELINE_HTTP_PORT"] = str(free_port())
    env["FIRELINE_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    demo = subprocess.Popen(
        [sys.executable, "-m", "agents.cli.main", "demo", "--spike-at", "8"],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
    assert re.search(
        r"(latency_ms\{[^}]*service=fraud-api\}|fraud:latency_spike): "
        r"observed \d+\.\d vs normal 4\d\.\d",
        output,
    ), output
    assert "injecting a 8x latency spike" in output
    assert output.rstrip().endswith("fireline demo: stopped.")
    time.sleep(0.5)
    assert processes_mentioning(f"127.0.0.1:{broker.group(1)}") == []
    assert list(workdir.iterdir()) == []  # nothing left in the user's working directory
    assert (tmp_path / "data" / "fireline-data").is_dir()

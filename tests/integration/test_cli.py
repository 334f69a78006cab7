"""`fireline broker` and `fireline simulate`, run as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from agents.kafka.broker import free_port
from agents.settings import Topics
from tests.integration.support import consume, processes_mentioning, wait_for

pytestmark = pytest.mark.integration


def test_broker_and_simulate__topics_created_traffic_flows_ctrl_c_stops(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    broker = subprocess.Popen(
        [sys.executable, "-m", "agents.cli.main", "broker", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bootstrap = f"127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = Topics()

        def created() -> bool:
            try:
                return set(topics.all()) <= set(admin.list_topics(timeout=2).topics)
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_for(created, 30, "the broker to create fireline's topics")
        # The state topics are created with their settings (read back by an independent client).
        resources = [ConfigResource("topic", name) for name in topics.configs()]
        for resource, future in admin.describe_configs(resources).items():
            described = {k: v.value for k, v in future.result(timeout=10).items()}
            wanted = topics.configs()[resource.name]
            assert {k: described.get(k) for k in wanted} == wanted, resource.name
        simulate = subprocess.run(
            [
                sys.executable,
                "-m",
                "agents.cli.main",
                "simulate",
                "--rate",
                "100",
                "--duration",
                "2",
            ],
            env={**env, "FIRELINE_BROKER_URL": f"kafka://{bootstrap}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr
        sent = int(simulate.stdout.split("sent ")[1].split(" ")[0])
        assert sent > 150
        assert len(consume(bootstrap, topics.predictions, 150, 20)) >= 150
        assert len(consume(bootstrap, topics.metrics, 30, 20)) >= 30
    finally:
        broker.send_signal(signal.SIGINT)
        assert broker.wait(15) == 0
        output = broker.stdout.read() if broker.stdout else ""
        if broker.stdout:
            broker.stdout.close()
    assert f"use FIRELINE_BROKER_URL=kafka://{bootstrap}" in output
    assert processes_mentioning(f"tcp://{bootstrap}") == []


def test_run__an_invalid_detector_setting_exits_2_before_touching_the_broker():
    # A listener stands in for the broker: after the process has exited, a
    # connection it made would be waiting in the listener's backlog.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env["FIRELINE_BROKER_URL"] = f"kafka://127.0.0.1:{listener.getsockname()[1]}"
    env["FIRELINE_DETECTION__WARMUP"] = "200"
    with listener:
        result = subprocess.run(  # the exit code is asserted below
            [sys.executable, "-m", "agents.cli", "run"],
            cwd=Path(__file__).parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr == (
            "fireline: error: invalid fireline settings:\n"
            "  detection.warmup (FIRELINE_DETECTION__WARMUP) must be at most detection.window "
            "(120); got 200\n"
        )
        with pytest.raises(BlockingIOError):  # nothing connected to the broker
            listener.accept()

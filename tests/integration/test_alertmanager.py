"""Prometheus alerts into fireline, end to end with the real tools.

An exporter the test serves → Debian's ``prometheus`` evaluating a rule over it →
Debian's ``prometheus-alertmanager`` → ``POST /webhooks/alertmanager`` on a real
worker → an incident → the Slack stand-in. Firing opens one root for the alert's
subject, however often Alertmanager repeats it; the exporter recovering resolves
the alert, and the root is rewritten as resolved.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agents.kafka.broker import EmbeddedBroker, free_port
from tests.integration.alerting import Exporter, alertmanager, prometheus, tool
from tests.integration.support import SlackServer, WorkerProcess, unique, wait_for, worker_env

pytestmark = pytest.mark.integration

TOKEN = "alertmanager-token-for-tests"
ROOT = Path(__file__).parents[2]


def documented(first_line: str) -> str:
    """The YAML example in the README (or a docs/ page) that starts with ``first_line``."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found = re.search(
            rf"```yaml\n({re.escape(first_line)}\n.*?)```", page.read_text(), re.DOTALL
        )
        if found:
            return found.group(1)
    raise AssertionError(f"no YAML example starting with {first_line!r} in the docs")


PLAYBOOK = documented("name: prometheus-alerts")  # the documented one is the one tested


def roots_about(slack: SlackServer, service: str) -> list[dict[str, Any]]:
    """The root messages (not thread replies) that name ``service``."""
    return [
        c
        for c in slack.called("chat.postMessage")
        if "thread_ts" not in c and service in str(c.get("text"))
    ]


def updates_of(slack: SlackServer, incident_id: str) -> list[dict[str, Any]]:
    """The chat.update calls that rewrote the incident's root (its context names the id)."""
    return [c for c in slack.called("chat.update") if incident_id in json.dumps(c.get("blocks"))]


def test_alertmanager__firing_opens_one_root_and_the_recovery_rewrites_it(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path
) -> None:
    service = unique("checkout")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "prometheus-alerts.yaml").write_text(PLAYBOOK)
    env = worker_env(
        broker.url,
        slack,
        playbooks,
        FIRELINE_ALERTMANAGER_TOKEN=TOKEN,
        FIRELINE_INCIDENTS__TICK_S="0.3",
        FIRELINE_INCIDENTS__QUIET_PERIOD_S="0",  # resolve at the first tick after the clear
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    webhook = f"http://127.0.0.1:{worker.port}/webhooks/alertmanager"
    am_port = free_port()

    # Everything starts at once (the worker takes longest); Alertmanager retries
    # until the worker answers.
    with (
        Exporter(service) as exporter,
        prometheus(exporter, am_port, tmp_path) as prom,
        alertmanager(webhook, TOKEN, am_port, tmp_path) as am,
    ):
        exporter.value = 1.0  # failing from the first scrape
        worker.start()
        try:

            def logs() -> str:
                return f"worker:\n{worker.log()}\nalertmanager:\n{am.log()}\n"

            wait_for(lambda: prom.ready() and am.ready(), 60, f"the tools ready; {logs()}")
            wait_for(lambda: roots_about(slack, service), 60, f"the alert's root; {logs()}")
            [root] = roots_about(slack, service)
            assert f"[CRITICAL] Alert: HighErrorRate on {service}" in root["text"]
            assert f"{service} fails requests" in root["text"], "the alert's summary"
            assert 'ALERTS{alertname="HighErrorRate"' in str(root["blocks"])
            match = re.search(r"Incident (inc-[0-9a-f]+)", root["text"])
            assert match, root["text"]
            incident_id = match.group(1)

            # Alertmanager repeats the firing alert (repeat_interval 2s): each is answered
            # and changes nothing, however long it fires.
            failed = am.metric("alertmanager_notifications_failed_total", integration="webhook")
            sent = am.metric("alertmanager_notifications_total", integration="webhook")
            wait_for(
                lambda: (
                    am.metric("alertmanager_notifications_total", integration="webhook") >= sent + 2
                ),
                30,
                f"two repeats of the firing alert; {logs()}",
            )

            exporter.value = 0.0  # the service recovers: the alert resolves

            def resolved() -> list[dict[str, Any]]:
                return [u for u in updates_of(slack, incident_id) if "[RESOLVED]" in u["text"]]

            wait_for(resolved, 60, f"the root rewritten as resolved; {logs()}")
            assert roots_about(slack, service) == [root], "one root, however often it was sent"
            updates = updates_of(slack, incident_id)
            assert len({(u["channel"], u["ts"]) for u in updates}) == 1, "all on the root"
            last = resolved()[-1]
            assert f"[RESOLVED] Alert: HighErrorRate on {service} after" in last["text"]
            assert "(recovered)" in str(last["blocks"])
            assert f"Incident `{incident_id}` · 1 detection" in str(last["blocks"])
            assert (
                am.metric("alertmanager_notifications_failed_total", integration="webhook")
                == failed
            ), f"fireline refused a notification; {logs()}"
        finally:
            worker.stop()


def test_alertmanager__the_documented_receiver_config_passes_amtool(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(documented("# alertmanager.yml"))
    amtool = tool("amtool", package="prometheus-alertmanager")

    result = subprocess.run(
        [amtool, "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "/webhooks/alertmanager" in config.read_text()

"""`fireline backtest` over the input topics: a past week's spike, what would have run, nothing sent."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from agents.kafka.broker import EmbeddedBroker, create_topics
from tests.integration.support import SlackServer, worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DAY = 86_400.0
WEBHOOK_PLAYBOOK = """\
name: latency-webhook
match:
  kinds: [latency_spike]
  transitions: [opened]
steps:
  - webhook:
      url: http://127.0.0.1:9/hooks/latency
"""


def latency_samples(start: float, spike_at: int) -> list[tuple[float, bytes]]:
    """Two hours of a service's latency every 5 s, with a 5-minute spike at ``spike_at``."""
    rng = random.Random(7)
    labels = {"service": "checkout", "model": "ranker", "model_version": "3"}
    samples = []
    for i in range(1440):
        value = rng.gauss(300.0, 10.0) if spike_at <= i < spike_at + 60 else rng.gauss(50.0, 2.0)
        ts = start + i * 5.0
        event = {"timestamp": ts, "name": "latency_ms", "value": round(value, 2), "labels": labels}
        samples.append((ts, json.dumps(event).encode()))
    return samples


def produce_at_event_time(bootstrap: str, topic: str, samples: list[tuple[float, bytes]]) -> None:
    """Each record stamped with its event time, as a producer logging as it goes would."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for ts, value in samples:
        producer.produce(topic, value=value, timestamp=int(ts * 1000))
        producer.poll(0)
    assert producer.flush(15) == 0


def backtest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "backtest", *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_backtest__a_spike_in_last_weeks_topics_lists_the_incident_and_its_slack_step_and_sends_nothing(
    broker: EmbeddedBroker, slack: SlackServer, tmp_path: Path
):
    env = worker_env(broker.url, slack)
    metrics = env["FIRELINE_TOPICS__METRICS"]
    topics = [metrics, env["FIRELINE_TOPICS__PREDICTIONS"], env["FIRELINE_TOPICS__LABELS"]]
    asyncio.run(create_topics(broker.bootstrap_servers, topics, 2))
    week_ago = time.time() - 7 * DAY
    inside = latency_samples(week_ago, spike_at=720)
    # A second spike after the range: read past --to only up to the lateness, never used.
    after = latency_samples(week_ago + 3 * DAY, spike_at=720)
    produce_at_event_time(broker.bootstrap_servers, metrics, inside + after)
    extra = tmp_path / "extra"
    extra.mkdir()
    for shipped in (ROOT / "playbooks" / "library").glob("*.yaml"):
        (extra / shipped.name).write_text(shipped.read_text())
    (extra / "latency-webhook.yaml").write_text(WEBHOOK_PLAYBOOK)
    calls_before = len(slack.calls)

    done = backtest(
        env,
        "--from", str(week_ago - 60),
        "--to", str(week_ago + DAY),
        "--compare", str(extra),
        "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == len(inside)  # the second week's spike is out of range
    incidents = report["incidents"]
    assert [(i["kind"], i["resolution"]) for i in incidents] == [("latency_spike", "recovered")]
    spike_time = week_ago + 720 * 5.0
    assert spike_time <= incidents[0]["opened_at"] < spike_time + 60
    shipped, candidate = report["playbook_sets"]
    opened = [s for s in shipped["steps"] if s["transition"] == "opened"]
    assert [(s["playbook"], s["action"], s["outcome"]) for s in opened] == [
        ("latency-spike-alert", "slack", "dry_run")
    ]
    assert opened[0]["params"]["channel"] == "#fireline-alerts"
    assert shipped["summary"]["slack_messages"] == {"#fireline-alerts": 2}  # opened, resolved
    assert [(s["playbook"], s["action"]) for s in report["compare"]["added"]] == [
        ("latency-webhook", "webhook")
    ]
    assert report["compare"]["removed"] == []
    assert candidate["summary"]["incidents"] == 1
    # The backtest finished (its report is above): nothing reached the Slack stand-in.
    assert len(slack.calls) == calls_before


def test_backtest__text_report_of_files_names_the_incident_step_and_the_added_playbook(
    tmp_path: Path,
):
    events = tmp_path / "metrics.jsonl"
    samples = latency_samples(1_795_000_000.0, spike_at=700)
    events.write_bytes(b"\n".join(value for _, value in samples) + b"\n{not json}\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "latency-webhook.yaml").write_text(WEBHOOK_PLAYBOOK)
    env = {k: v for k, v in worker_env("kafka://127.0.0.1:9", None).items()}

    done = backtest(env, str(events), "--compare", str(extra))

    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "1,440 events (1 rejected)" in text
    assert f"rejected: {events}:1441: not_json" in text
    assert "latency_spike" in text and "resolved (recovered)" in text
    assert "latency-spike-alert/slack on opened" in text
    lines = text.splitlines()
    assert any(ln.startswith("  + ") and "latency-webhook/webhook on opened" in ln for ln in lines)
    # The extra set has no slack playbook: the shipped set's slack steps are removed.
    assert any(
        ln.startswith("  - ") and "latency-spike-alert/slack on opened" in ln for ln in lines
    )

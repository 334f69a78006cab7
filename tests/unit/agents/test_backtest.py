"""The backtest's simulation and report, on events built in memory (no broker)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from agents.backtest.report import compare, summarize, to_json, to_text
from agents.backtest.simulation import Backtest, BacktestResult
from agents.pipelines.events import MetricEvent
from agents.recorded.contracts import InputEvent, LineValidator
from agents.recorded.jsonl import read_merged
from agents.recorded.rejects import Rejects
from agents.settings import Settings
from fireline.errors import ConfigError

START = 1_795_000_000.0
LABELS = {"service": "checkout", "model": "ranker", "model_version": "3"}


def latency(spikes: Iterable[tuple[int, int]], samples: int = 1440) -> list[MetricEvent]:
    """A latency series every 5 s; within each (first, length) of ``spikes`` it jumps 6x."""
    rng = random.Random(3)
    inside = {i for first, length in spikes for i in range(first, first + length)}
    return [
        MetricEvent(
            timestamp=START + i * 5.0,
            name="latency_ms",
            value=rng.gauss(300.0, 10.0) if i in inside else rng.gauss(50.0, 2.0),
            labels=LABELS,
        )
        for i in range(samples)
    ]


def run(events: Iterable[InputEvent], *dirs: Path) -> BacktestResult:
    settings = Settings()
    return asyncio.run(Backtest(settings, list(dirs)).run(events))


def playbook(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "p.yaml").write_text(text)
    return directory


VERIFIED = """\
name: page-if-it-lasts
match: {kinds: [latency_spike], transitions: [opened]}
steps:
  - slack: {channel: "#oncall"}
verify:
  resolved_within: 2m
  on_unverified:
    - pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY}
"""


def test_a_spike_that_outlasts_verify_pages_at_its_event_time_deadline(tmp_path):
    result = run(latency([(700, 60)]), playbook(tmp_path / "p", VERIFIED))  # 5 min spike

    (incident,) = result.incidents.values()
    steps = result.runs[0].steps
    assert [(s.transition, s.action, s.outcome) for s in steps] == [
        ("opened", "slack", "dry_run"),
        ("verify", "verify", "failed"),
        ("verify", "pagerduty", "dry_run"),
    ]
    assert steps[1].at == pytest.approx(steps[0].at + 120, abs=Settings().incidents.tick_s)
    summary = summarize(result, result.runs[0])
    assert (summary.pages, summary.slack_messages) == (1, {"#oncall": 1})
    assert incident.opened_at == pytest.approx(START + 700 * 5.0, abs=60)


def test_a_short_spike_is_verified_and_pages_nobody(tmp_path):
    result = run(latency([(700, 6)]), playbook(tmp_path / "p", VERIFIED))  # 30 s spike

    steps = result.runs[0].steps
    assert [(s.transition, s.action, s.outcome) for s in steps] == [
        ("opened", "slack", "dry_run"),
        ("verify", "verify", "ok"),
    ]
    assert summarize(result, result.runs[0]).pages == 0


COOLDOWN = """\
name: once-an-hour
match: {kinds: [latency_spike], transitions: [opened, reopened]}
cooldown: 1h
steps:
  - webhook: {url: "http://127.0.0.1:9/hook"}
"""


def test_guardrails_count_in_event_time_a_second_spike_inside_the_cooldown_is_held(tmp_path):
    # Two spikes 50 minutes apart, replayed in well under a second of wall time.
    result = run(latency([(300, 30), (900, 30)]), playbook(tmp_path / "p", COOLDOWN))

    steps = result.runs[0].steps
    assert [(s.action, s.outcome) for s in steps] == [("webhook", "dry_run"), ("-", "skipped")]
    assert steps[1].detail.startswith("cooldown: ran for this fingerprint")
    assert "held by guardrails (1)" in to_text(result, 0, [])


def test_compare_lists_what_the_second_set_adds_and_removes(tmp_path):
    result = run(
        latency([(700, 60)]),
        playbook(tmp_path / "a", VERIFIED),
        playbook(tmp_path / "b", COOLDOWN),
    )

    diff = compare(*result.runs)
    assert [s.action for s in diff.added] == ["webhook"]
    assert [s.action for s in diff.removed] == ["slack", "pagerduty"]
    document = json.loads(to_json(result, 0, []))
    assert [s["action"] for s in document["compare"]["added"]] == ["webhook"]


def test_files_merge_by_event_time_and_rejects_name_file_and_line(tmp_path):
    events = latency([], samples=10)
    odd, even = tmp_path / "odd.jsonl", tmp_path / "even.jsonl"
    odd.write_text("".join(e.model_dump_json() + "\n" for e in events[1::2]))
    even.write_text(
        "".join(e.model_dump_json() + "\n" for e in events[0::2])
        + '{"timestamp": 1, "name": "x", "value": "high"}\n'
    )
    rejects = Rejects()

    merged = list(read_merged([odd, even], LineValidator(65_536), rejects))

    assert [e.timestamp for e in merged] == [e.timestamp for e in events]
    assert rejects.count == 1
    assert rejects.examples[0].startswith(f"{even}:6: wrong_type")


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.jsonl"):
        list(read_merged([tmp_path / "nope.jsonl"], LineValidator(65_536), Rejects()))


def test_no_events_reports_so():
    result = run([], Path("playbooks/library"))
    assert to_text(result, 0, []).startswith("Backtest: no events in range")

"""The backtest's incidents and steps do not depend on where the detection batches are cut.

Detection is the replay core's (agents/pipelines/offline.py): micro-batches cut by
event time and size, labels batched after predictions. Fed one event at a time
or in batches of any size, the backtest must list the same incidents and the
same playbook steps, at the same event times.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from agents.backtest.simulation import BATCHING, Backtest, BacktestResult
from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.offline import Batching
from agents.recorded.contracts import InputEvent
from agents.settings import Settings
from detectors.monitor.model_monitor import MonitorConfig

T0 = 1_795_000_000.0
# Small windows: drift is found within a few hundred predictions.
MONITOR = MonitorConfig(
    warmup=10, reference_size=200, window=50, step=25, label_reference=100, classifier_every=0
)
EVERY_KIND = """\
name: every-incident
match: {kinds: ["*"], transitions: [opened, updated, escalated, resolved, reopened]}
steps:
  - slack: {channel: "#backtest"}
verify:
  resolved_within: 3m
  on_unverified:
    - pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY}
"""


def recorded_traffic(seed: int = 5) -> list[InputEvent]:
    """Two models' predictions (each a feature shift) with labels 7 events late, in between
    a checkout latency series every 2 s with a 10x spike; merged by event time."""
    rng = np.random.default_rng(seed)
    events: list[InputEvent] = []
    for i in range(900):
        model = "fraud" if i % 3 else "churn"
        shift = 4.0 if i >= (500 if model == "fraud" else 650) else 0.0
        events.append(
            PredictionEvent(
                timestamp=T0 + i,
                model=model,
                model_version="7",
                prediction_id=f"{model}-{i}",
                features={"amount": float(rng.normal(shift, 1.0)), "country": "DE"},
                prediction=float(rng.random()),
                latency_ms=float(rng.normal(20, 1)),
            )
        )
        if i >= 7:
            late = i - 7
            events.append(
                LabelEvent(
                    timestamp=T0 + i + 0.5,
                    model="fraud" if late % 3 else "churn",
                    prediction_id=f"{'fraud' if late % 3 else 'churn'}-{late}",
                    label=int(rng.random() < 0.5),
                )
            )
    for i in range(450):
        spike = 10.0 if 300 <= i < 330 else 1.0
        events.append(
            MetricEvent(
                timestamp=T0 + 2 * i + 0.25,
                name="latency_ms",
                value=float(rng.normal(50, 2)) * spike,
                labels={"service": "checkout"},
            )
        )
    return sorted(events, key=lambda e: e.timestamp)


def backtest(events: list[InputEvent], playbooks: Path, batching: Batching) -> BacktestResult:
    run = Backtest(Settings(), [playbooks], batching=batching, monitor=MONITOR).run(events)
    return asyncio.run(run)


def seen(result: BacktestResult) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return (
        [asdict(i) for i in result.incidents.values()],
        [asdict(s) for s in result.runs[0].steps],
    )


@pytest.fixture(scope="module")
def traffic_and_playbooks(tmp_path_factory):
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "every.yaml").write_text(EVERY_KIND)
    return recorded_traffic(), directory


@pytest.fixture(scope="module")
def one_at_a_time(traffic_and_playbooks) -> BacktestResult:
    events, playbooks = traffic_and_playbooks
    return backtest(events, playbooks, Batching(max_events=1))


def test_the_traffic_has_what_makes_batching_matter(one_at_a_time):
    incidents = list(one_at_a_time.incidents.values())
    kinds = {(i.kind, i.subject) for i in incidents}
    assert ("latency_spike", "checkout") in {(k, s.split(" /")[0]) for k, s in kinds}
    drifted = {i.subject for i in incidents if i.kind.endswith("drift")}
    assert len(drifted) >= 2, f"both models' shifts should open incidents: {kinds}"
    actions = {s.action for s in one_at_a_time.runs[0].steps if s.would_run}
    assert "slack" in actions


# by-size-only: a batch of 500 events would span ~200 s here, and an alarm re-sent
# only once a batch would expire (signal_expiry_s 180 s); the backtest keeps a
# batch's span inside that margin whatever it is given.
@pytest.mark.parametrize(
    "batching",
    [BATCHING, Batching(window_s=3.0, max_events=37), Batching(window_s=1e9, max_events=500)],
    ids=["backtest-default", "small-odd", "by-size-only"],
)
def test_batched_backtest_lists_the_same_incidents_and_steps_as_one_event_at_a_time(
    traffic_and_playbooks, one_at_a_time, batching
):
    events, playbooks = traffic_and_playbooks

    batched = backtest(events, playbooks, batching)

    assert seen(batched) == seen(one_at_a_time)
    assert (batched.detections, batched.events) == (one_at_a_time.detections, len(events))

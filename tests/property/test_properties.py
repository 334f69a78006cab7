"""Properties that must hold for any input: nothing bad input can do crashes a worker."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.ingest import REASONS, Record, Validator
from detectors import LatencySpike
from playbooks.actions import default_registry
from playbooks.loader import load_file

MODELS = [MetricEvent, PredictionEvent, LabelEvent]

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
near_events = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": json_values | st.just("2026-11-21T10:00:00Z"),
        "name": json_values,
        "value": json_values,
        "labels": json_values,
        "model": json_values,
        "model_version": json_values,
        "prediction_id": json_values,
        "features": json_values,
        "prediction": json_values,
        "label": json_values,
    },
)


def check_partition(model: type, values: list[bytes]) -> None:
    records = [Record("t", 0, i, None, v) for i, v in enumerate(values)]
    out = Validator(model, 512).validate(records)
    assert len(out.events) + len(out.dead) == len(records)
    assert all(d.reason in REASONS and d.detail for d in out.dead)
    assert sorted(d.record.offset for d in out.dead) == [d.record.offset for d in out.dead]


@settings(deadline=None)
@given(st.sampled_from(MODELS), st.lists(st.binary(max_size=600), max_size=8))
def test_validator__any_bytes_become_an_event_or_a_dead_letter(model, values):
    check_partition(model, values)


@settings(deadline=None)
@given(st.sampled_from(MODELS), st.lists(near_events, max_size=8))
def test_validator__any_json_object_becomes_an_event_or_a_dead_letter(model, objects):
    check_partition(model, [json.dumps(o).encode() for o in objects])


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=400))
# Found by this test: value - median overflowed to inf and the score was inf/inf = NaN.
@example([-1e308] * 10 + [1e308])
# Issue 13: a finite 1e300 after a flat start, over a spread of 1e-9, scored inf/inf = NaN.
@example([0.0] * 10 + [1e300])
def test_latency_spike__any_floats_keep_score_in_unit_interval(values):
    detector = LatencySpike(window=20, warmup=10, consecutive=2)
    for chunk_start in range(0, len(values), 7):
        detector.update(values[chunk_start : chunk_start + 7])
        assert 0.0 <= detector.score <= 1.0


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_latency_spike__reset_after_detection_behaves_like_new(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    stream = np.concatenate([rng.normal(50, 2, 100), rng.normal(500, 5, 10)])
    detector = LatencySpike().update(stream)
    assert detector.alarm
    detector.reset()
    fresh = LatencySpike()
    for x in stream[:50]:
        assert detector.update(x).alarm == fresh.update(x).alarm
        assert detector.score == fresh.score


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None
)
@given(st.text(max_size=300))
def test_loader__any_text_is_a_playbook_or_located_problems(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    playbook, problems = load_file(path, default_registry())
    assert (playbook is None) == bool(problems)
    for problem in problems:
        place = problem.removeprefix(f"{path}:").split(":")
        assert place[0].isdigit() and place[1].isdigit(), problem

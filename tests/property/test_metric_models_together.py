"""Many series learnt together (one NumPy step per point) equal each series learnt alone.

``learn_many`` against ``ContextModel.learn`` model by model, ``MetricEnsemble.update_many``
against ``update`` detector by detector, and ``MetricPipeline`` with its batch path
against the pipeline feeding each series' detector in turn: outputs and states equal,
not close. The vector path is forced on (any number of series and points) unless
a test says otherwise; the tiny bit sets make a point's look-ups collide.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import pickle
from collections.abc import Iterator
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.pipelines.fast_events import FastMetricEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.settings import DetectionSettings
from detectors import MetricEnsemble
from detectors.metric import context_batch
from detectors.metric.base import MetricDetector
from detectors.metric.context_batch import learn_many
from detectors.metric.contextual import ContextModel, ContextModelParams
from tests.property.chunks import cut

# Repeating levels (familiar contexts stop the look-ups early), wandering values (new
# ones set bits), range breaks, and spans too narrow to invert or too wide to hold.
levels = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 50.0, -7.25, 1e6])
extremes = st.sampled_from([5e-324, 2.2250738585e-313, -1e308, 1e308, 1.7976931348623157e308])
point = levels | levels | st.floats(min_value=-1e9, max_value=1e9, allow_nan=False) | extremes
series_values = st.lists(point, min_size=0, max_size=60)
chunks = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8)
model_params = st.builds(
    ContextModelParams,
    grids=st.lists(st.integers(2, 64), min_size=1, max_size=3).map(tuple),
    order=st.integers(1, 8),
    memory_kib=st.sampled_from([1, 1, 3, 64]),
    warmup=st.integers(1, 30),
)


@contextlib.contextmanager
def vector_path_always() -> Iterator[None]:
    """learn_many's NumPy steps for any number of series and points."""
    with (
        mock.patch.object(context_batch, "_MIN_ROWS", 1),
        mock.patch.object(context_batch, "_MIN_POINTS", 0),
    ):
        yield


def rounds(streams: list[list[float]], sizes: list[int]) -> list[list[list[float]]]:
    """Per round, each stream's next chunk (empty once a stream is exhausted)."""
    cuts = [cut(xs, sizes) if xs else [] for xs in streams]
    return [
        [c[r] if r < len(c) else [] for c in cuts] for r in range(max(map(len, cuts), default=0))
    ]


def model_state(model: ContextModel) -> tuple[object, ...]:
    return (
        model._lo,
        model._hi,
        model._seen,
        model._widened_at,
        model._history,
        bytes(model._memory),
    )


def same_floats(a: object, b: object) -> bool:
    """Equal, NaN included (a model before its first point has NaN bounds)."""
    return pickle.dumps(a) == pickle.dumps(b)


@settings(deadline=None, max_examples=120)
@given(model_params, st.lists(series_values, min_size=1, max_size=30), chunks, st.integers(0, 3))
@example(ContextModelParams(memory_kib=1), [[0.0, 2.2250738585e-313, 0.0] * 4] * 3, [2], 0)
@example(ContextModelParams(), [[1e308, -1e308, 0.0, 5.0] * 3, [1.0, 2.0] * 6], [3, 1], 0)
@example(ContextModelParams(grids=(64,), order=8, memory_kib=1), [[1.0, 2.0, 3.0] * 20] * 5, [9], 0)
def test_learn_many__equals_each_model_learning_alone(params, streams, sizes, warm):
    alone = [ContextModel(params) for _ in streams]
    together = [ContextModel(params) for _ in streams]
    for model in alone + together:  # some series well past their first `order` points
        model.learn([float(i % 4) for i in range(warm * 5)])
    with vector_path_always():
        for batches in rounds(streams, sizes):
            expected = [model.learn(batch) for model, batch in zip(alone, batches, strict=True)]
            assert learn_many(together, batches) == expected
            for a, b in zip(alone, together, strict=True):
                assert same_floats(model_state(a), model_state(b))


@settings(deadline=None, max_examples=40)
@given(st.lists(series_values, min_size=1, max_size=12), chunks)
def test_learn_many__groups_models_by_parameters(streams, sizes):
    params = [ContextModelParams(), ContextModelParams(memory_kib=1, order=2)]
    alone = [ContextModel(params[i % 2]) for i in range(len(streams))]
    together = [ContextModel(params[i % 2]) for i in range(len(streams))]
    with vector_path_always():
        for batches in rounds(streams, sizes):
            expected = [model.learn(batch) for model, batch in zip(alone, batches, strict=True)]
            assert learn_many(together, batches) == expected
    assert [model_state(m)[2:] for m in alone] == [model_state(m)[2:] for m in together]


def test_learn_many__says_what_does_not_match():
    try:
        learn_many([ContextModel()], [])
    except ValueError as error:
        assert "1 models for 0 batches" in str(error)
    else:
        raise AssertionError("learn_many accepted one model and no batch")


# The ensemble: raw values with gaps (NaN, infinities) and beyond MAX_MAGNITUDE.
raw_point = point | st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e200, -1e200])
ensemble_params = st.sampled_from(
    [
        {"warmup": 10, "memory_kib": 1, "rest": 3, "consecutive": 1, "smoothing": 2},
        {"warmup": 12, "grids": (2, 9), "order": 3, "coarse_step": 2, "stuck_after": 2},
        {"warmup": 10, "calibration_strength": 0.0, "memory_kib": 1},
    ]
)


@settings(deadline=None, max_examples=60)
@given(
    ensemble_params,
    st.lists(st.lists(raw_point, max_size=80), min_size=1, max_size=12),
    chunks,
    st.booleans(),
)
def test_metric_ensemble__update_many_equals_updating_each_alone(params, streams, sizes, vector):
    alone = [MetricEnsemble(**params) for _ in streams]
    together = [MetricEnsemble(**params) for _ in streams]
    path = vector_path_always() if vector else contextlib.nullcontext()
    with path:
        for r, batches in enumerate(rounds(streams, sizes)):
            times = [[1e9 + r + i / 100 for i in range(len(b))] if r % 2 else None for b in batches]
            for detector, batch, stamps in zip(alone, batches, times, strict=True):
                detector.update(batch, stamps)
            MetricEnsemble.update_many(together, batches, times)
            for a, b in zip(alone, together, strict=True):
                assert same_floats((a.score, a.alarm, a.changes), (b.score, b.alarm, b.changes))
    for a, b in zip(alone, together, strict=True):
        assert pickle.dumps(a) == pickle.dumps(b)


# The pipeline: ensemble series (several per metric) and latency series, interleaved.
names = st.sampled_from(["cpu", "queue_depth", "latency_ms"])
samples = st.lists(
    st.tuples(names, st.integers(0, 7), raw_point.filter(lambda v: not math.isnan(v))),
    min_size=100,
    max_size=900,
)


def metric_events(drawn: list[tuple[str, int, float]]) -> list[FastMetricEvent]:
    return [
        FastMetricEvent(timestamp=1e9 + i, name=name, value=value, labels={"pod": f"p{pod}"})
        for i, (name, pod, value) in enumerate(drawn)
    ]


@settings(deadline=None, max_examples=25)
@given(samples, st.lists(st.integers(1, 400), min_size=1, max_size=4))
def test_metric_pipeline__detections_equal_with_and_without_the_batch_path(drawn, sizes):
    settings_ = DetectionSettings.model_validate(
        {"ensemble": {"warmup": 10, "memory_kib": 1, "consecutive": 1}, "warmup": 10}
    )
    events = metric_events(drawn)
    one_by_one = MetricPipeline(settings_)
    together = MetricPipeline(settings_)
    plain = classmethod(MetricDetector.update_many.__func__)  # type: ignore[attr-defined]
    starts = [0]
    while starts[-1] < len(events):
        starts.append(starts[-1] + sizes[len(starts) % len(sizes)])
    for start, end in itertools.pairwise(starts):
        batch = events[start:end]
        with mock.patch.object(MetricEnsemble, "update_many", plain):
            expected = one_by_one.process(batch, 3)
        with vector_path_always():
            assert together.process(batch, 3) == expected
        assert together.dirty == one_by_one.dirty
        assert list(together.detectors) == list(one_by_one.detectors)
    for series, detector in one_by_one.detectors.items():
        assert pickle.dumps(together.detectors[series]) == pickle.dumps(detector)

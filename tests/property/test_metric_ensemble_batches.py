"""The ensemble's batched hot path gives exactly what the plain per-point algorithm gives.

ContextModel.learn and NoveltyLikelihood.scores keep their state in local
variables over a micro-batch and hash with operands reduced modulo the bit set's
prime; the references below are the straightforward per-point algorithms
(the hash as (a * key + b) mod p on the unreduced operands, each point through
the object's attributes). Results and states must be equal, not close.
"""

from __future__ import annotations

import math
import pickle
from collections import deque

from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors import MetricEnsemble
from detectors.metric.contextual import (
    ContextModel,
    ContextModelParams,
    _hash_pair,
    _largest_prime_at_most,
)
from detectors.metric.likelihood import BLOCKS, NoveltyLikelihood
from tests.property.chunks import cut

# Values on a few levels, so contexts repeat (familiar patterns stop the search early)
# as well as wander (new ones set bits); with spikes that stretch the range.
levels = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 50.0, -7.25, 1e6])
values = st.lists(
    levels | st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=400
)
chunks = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20)
model_params = st.builds(
    ContextModelParams,
    grids=st.lists(st.integers(2, 12), min_size=1, max_size=3).map(tuple),
    order=st.integers(1, 8),
    memory_kib=st.sampled_from([1, 3, 64]),
    warmup=st.integers(1, 30),
)


class ReferenceContextModel:
    """The per-point context model, written plainly (one hash plan per model)."""

    def __init__(self, params: ContextModelParams) -> None:
        self.params = params
        self.bits = _largest_prime_at_most(8 * 1024 * params.memory_kib)
        self.memory = bytearray(params.memory_kib * 1024)
        self.lo = self.hi = math.nan
        self.seen = self.widened_at = 0
        self.history = [0] * len(params.grids)

    def step(self, x: float) -> tuple[float, bool]:
        p = self.params
        if self.seen == 0:
            self.lo = self.hi = x
        width = self.hi - self.lo
        spatial = self.seen >= p.warmup and (
            x > self.hi + p.margin * width or x < self.lo - p.margin * width
        )
        if x < self.lo:
            self.lo, self.widened_at = x, self.seen
        elif x > self.hi:
            self.hi, self.widened_at = x, self.seen
        width = self.hi - self.lo
        scale = 1.0 / width if width > 0 else 0.0
        # A span too narrow to invert (subnormal) or too wide to hold is one symbol.
        position = (x - self.lo) * scale if math.isfinite(scale) and math.isfinite(width) else 0.0
        depth = min(p.order, self.seen)
        novel = 0
        for g, bins in enumerate(p.grids):
            base = bins + 1
            context = (self.history[g] * base + int(position * bins)) % base ** (p.order + 1)
            self.history[g] = context
            for k in range(depth, 0, -1):  # longest first, stop at the first seen
                a, b = _hash_pair(g * p.order + k)
                bit = (a * (context % base ** (k + 1)) + b) % self.bits
                if self.memory[bit >> 3] & (1 << (bit & 7)):
                    break
                novel += 1
                self.memory[bit >> 3] |= 1 << (bit & 7)
        self.seen += 1
        return (novel / (depth * len(p.grids)) if depth else 0.0), spatial


def reference_likelihood(raws: list[float], window: int, floor: float, warmup: int) -> list[float]:
    """The likelihood of each raw score against the last ~window (kept as block sums)."""
    block = max(1, window // BLOCKS)
    closed: deque[tuple[int, float, float]] = deque()
    n, s1, s2 = 0, 0.0, 0.0  # totals of the closed blocks
    open_n, open_s1, open_s2 = 0, 0.0, 0.0
    out = []
    for seen, raw in enumerate(raws, 1):
        open_n, open_s1, open_s2 = open_n + 1, open_s1 + raw, open_s2 + raw * raw
        count, total, squares = n + open_n, s1 + open_s1, s2 + open_s2
        if open_n == block:
            closed.append((open_n, open_s1, open_s2))
            n, s1, s2 = n + open_n, s1 + open_s1, s2 + open_s2
            open_n, open_s1, open_s2 = 0, 0.0, 0.0
            if len(closed) > BLOCKS:
                old = closed.popleft()
                n, s1, s2 = n - old[0], s1 - old[1], s2 - old[2]
        if seen < warmup:
            out.append(0.0)
            continue
        mean = total / count
        var = squares / count - mean * mean
        spread = math.sqrt(var) if var > floor * floor else floor
        score = math.log(0.5 * math.erfc((raw - mean) / (spread * math.sqrt(2.0))) + 1e-10)
        out.append(min(1.0, max(0.0, score / math.log(1e-10))))
    return out


@settings(deadline=None, max_examples=150)
@given(model_params, values, chunks)
@example(ContextModelParams(), [0.0, 2.2250738585e-313, 0.0], [2])  # a subnormal span
def test_context_model__learn_in_batches_equals_the_plain_per_point_model(params, xs, sizes):
    model, reference = ContextModel(params), ReferenceContextModel(params)
    learnt: list[tuple[float, bool]] = []
    for batch in cut(xs, sizes):
        novelties, spatials = model.learn(batch)
        learnt += zip(novelties, spatials, strict=True)
    assert learnt == [reference.step(x) for x in xs]
    assert bytes(model._memory) == bytes(reference.memory)
    assert (model.low, model.high, model._seen, model._widened_at, model._history) == (
        reference.lo,
        reference.hi,
        reference.seen,
        reference.widened_at,
        reference.history,
    )


@settings(deadline=None, max_examples=100)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=300),
    chunks,
    st.integers(2 * BLOCKS, 400),
    st.integers(1, 50),
)
def test_novelty_likelihood__scores_in_batches_equal_the_per_point_definition(
    raws, sizes, window, warmup
):
    likelihood = NoveltyLikelihood(window, 0.03, warmup)
    scores = [s for batch in cut(raws, sizes) for s in likelihood.scores(batch)]
    assert scores == reference_likelihood(raws, window, 0.03, warmup)


@settings(deadline=None, max_examples=60)
@given(values, chunks)
def test_metric_ensemble__any_batching_gives_the_results_and_state_of_one_point_at_a_time(
    xs, sizes
):
    params = {"warmup": 10, "window": 40, "rest": 5, "stuck_after": 3, "adapt_after": 30}
    one, batched = MetricEnsemble(**params), MetricEnsemble(**params)
    scores, changes = [], []
    for i, x in enumerate(xs):
        scores.append(one.update(x).score)
        changes += [(i, c.raised, c.observed, c.baseline, c.score, c.adapted) for c in one.changes]
    start, batched_changes = 0, []
    for batch in cut(xs, sizes):
        batched.update(batch)
        assert batched.score == scores[start + len(batch) - 1]
        batched_changes += [
            (start + c.index, c.raised, c.observed, c.baseline, c.score, c.adapted)
            for c in batched.changes
        ]
        start += len(batch)
    assert batched_changes == changes
    # What the last update reported, and where it stopped within it: per update.
    one._changes = batched._changes = []
    one._cursor = batched._cursor = -1
    assert pickle.dumps(one) == pickle.dumps(batched)


def plain_novelty(detector: MetricEnsemble, batch: list[float]) -> list[float]:
    """The ensemble's novelty per point, written plainly (calibration, then range breaks)."""
    params = detector.params
    novelties, spatials = detector._model.learn(batch)
    scores = detector._likelihood.scores(novelties)
    for i, x in enumerate(batch):
        detector._coarse_sum += x
        detector._coarse_n += 1
        if detector._coarse_n == params.coarse_step:
            mean = detector._coarse_sum / params.coarse_step
            coarse = detector._coarse_likelihood.scores(detector._coarse_model.learn([mean])[0])
            scores[i] = max(scores[i], coarse[0])
            detector._coarse_sum, detector._coarse_n = 0.0, 0
    if params.calibration_strength:
        keep = 1.0 - 1.0 / params.calibration_window
        for i, score in enumerate(scores):
            detector._detections = detector._detections * keep + (score >= params.threshold)
            if detector._detections > params.calibration_allowance:
                excess = detector._detections / params.calibration_allowance
                scores[i] = max(0.0, score - params.calibration_strength * math.log10(excess))
    return [1.0 if spatial else score for score, spatial in zip(scores, spatials, strict=True)]


def plain_update(detector: MetricEnsemble, batch: list[float]) -> None:
    """MetricDetector.update of a finite batch, every point through _learn_normal or _judge."""
    params = detector.params
    detector._changes = []
    detector._cursor = -1
    signals = zip(
        batch,
        plain_novelty(detector, batch),
        detector._jumps(batch),
        detector._stuck(batch),
        strict=True,
    )
    for index, (x, novelty, jump, stuck) in enumerate(signals, detector._seen):
        jumped = jump is not None
        detector._cursor += 1
        score = 1.0 if jumped or stuck == 1 else novelty  # 1: stuck from this point on
        if index + 1 < params.warmup:
            detector._score = 0.0
            detector._learn_normal(x)
            continue
        if detector._resting:
            detector._resting -= 1
            detector._score = 0.0
        else:
            detector._score = score
        hot = stuck != 0  # 0: not stuck
        if score >= params.threshold:
            detector._resting = params.rest
            envelope = detector._env_hi - detector._env_lo
            if jumped and abs(jump - detector._baseline) < params.jump_alarm_fraction * envelope:
                hot = hot or (novelty >= params.threshold and detector._model.steady > params.order)
            else:
                hot = hot or jumped or detector._model.steady > params.order
        if not hot and not detector._normal_lo <= x <= detector._normal_hi:
            hot = True
        if hot or detector._alarm or detector._hot_run:
            detector._judge(x, hot)
        else:
            detector._learn_normal(x)
    detector._seen += len(batch)


ensemble_params = st.fixed_dictionaries(
    {
        "warmup": st.integers(10, 30),
        "window": st.integers(40, 200),
        "threshold": st.sampled_from([0.5, 0.75]),
        "rest": st.integers(0, 10),
        "consecutive": st.integers(1, 3),
        "adapt_after": st.integers(4, 40),
        "stuck_after": st.integers(1, 5),
        "smoothing": st.integers(1, 10),
        "coarse_step": st.integers(2, 4),
        "calibration_strength": st.sampled_from([0.0, 0.2]),
        "calibration_window": st.sampled_from([1, 50, 5000]),
        "jump_alarm_fraction": st.sampled_from([0.0, 0.07, 0.3]),
    }
)


def _expand(segments: list[tuple[float, int, bool]]) -> list[float]:
    return [v + (i % 3) * 0.5 if wiggle else v for v, n, wiggle in segments for i in range(n)]


# Series long enough to alarm: segments on a level, flat (stuck) or wiggling, with
# level shifts and spikes between them.
series = st.lists(
    st.tuples(levels | st.floats(-1e9, 1e9), st.integers(1, 40), st.booleans()),
    min_size=3,
    max_size=25,
).map(_expand)


@settings(deadline=None, max_examples=150)
@given(ensemble_params, series, chunks)
def test_metric_ensemble__the_batch_loop_equals_the_plain_per_point_algorithm(params, xs, sizes):
    # The batch loop learns a normal point with the state in local variables and
    # fuses the calibration with the range breaks; the reference does neither.
    fast, plain = MetricEnsemble(**params), MetricEnsemble(**params)
    for batch in cut(xs, sizes):
        fast.update(batch)
        plain_update(plain, batch)
        assert pickle.dumps((fast.score, fast.alarm, fast.changes)) == pickle.dumps(
            (plain.score, plain.alarm, plain.changes)
        )
    assert pickle.dumps(fast) == pickle.dumps(plain)

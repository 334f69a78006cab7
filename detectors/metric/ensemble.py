"""MetricEnsemble: the default detector for a metric series nobody described."""

from __future__ import annotations

import math
from collections import deque

from pydantic import Field

from detectors.metric.base import MetricDetector
from detectors.metric.contextual import ContextModel, ContextModelParams
from detectors.params import larger_than

_SQRT2 = math.sqrt(2.0)
# The anomaly likelihood is reported on a log scale: a tail probability of 1e-10
# or less scores 1 (as in HTM's anomaly likelihood, which NAB's Numenta detector uses).
_TAIL_FLOOR = 1e-10
_LOG_TAIL_FLOOR = math.log(_TAIL_FLOOR)
_BLOCKS = 20  # the likelihood window is kept as this many block sums


class MetricEnsembleParams(ContextModelParams):
    """Parameters of :class:`MetricEnsemble`; its context model takes the inherited ones."""

    threshold: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Anomaly score that counts as a detection (starts a rest, makes a point hot).",
    )
    rest: int = Field(
        default=75,
        ge=0,
        description="Points scored 0 after a detection: one detection per episode.",
    )
    window: int = Field(
        default=2000,
        ge=2 * _BLOCKS,
        description="Points over which the context novelty's mean and spread are estimated.",
    )
    min_spread: float = Field(
        default=0.03, gt=0, description="Floor of the context novelty's standard deviation."
    )
    warmup: int = Field(default=100, ge=10, description="Points learned before any score or alarm.")
    consecutive: int = Field(
        default=3,
        ge=1,
        description="Hot (or normal) points in a row to raise (or clear) the alarm.",
    )
    adapt_after: int = Field(
        default=500, description="Alarmed points after which the new level becomes normal."
    )

    rules = (larger_than("adapt_after", "consecutive"),)


class MetricEnsemble(MetricDetector[MetricEnsembleParams]):
    """Context novelty, range breaks and an anomaly likelihood, for any metric series.

    Three signals, each cheap and each from the past only:

    1. **Context novelty** (:class:`~detectors.metric.contextual.ContextModel`): the
       fraction of the latest value's short symbol sequences, on a few coarse
       grids over the running range, that the series never showed before.
    2. **Range break**: the value lies beyond everything seen so far by more than
       ``margin`` times the range's width. Scores 1.
    3. **Anomaly likelihood** of the novelty: how far the latest novelty is above
       the novelty's own mean over the last ``window`` points, in standard
       deviations (floored at ``min_spread``), turned into a Gaussian tail
       probability and put on a log scale (tail 1e-10 → 1). A noisy series that
       always shows new contexts therefore needs far more novelty to score high
       than a regular one.

    :attr:`score` is the larger of the likelihood and the range break. It is a
    *detection* score: when it reaches ``threshold`` the detector rests for
    ``rest`` points, reporting 0, so one episode makes one early detection
    rather than a run of them (what NAB rewards, and what an on-call wants).

    :attr:`alarm` says whether the series is in an anomalous state, with
    hysteresis. A point is *hot* if its unrested score reaches ``threshold`` (and
    the range has not widened in the last ``order`` points: right after it has,
    every context looks new) or it lies outside the normal envelope (the range of past non-hot points, plus
    ``margin``). The alarm rises after ``consecutive`` hot points in a row and
    clears after ``consecutive`` normal ones, or after ``adapt_after`` alarmed
    points, when the new level is taken as normal. No score and no alarm in the
    first ``warmup`` points.

    Parameters: :class:`MetricEnsembleParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> normal = 50 + 10 * np.sin(np.arange(600) / 10) + rng.normal(0, 1, 600)
        >>> shifted = rng.normal(90, 1, 20)
        >>> detector = MetricEnsemble()
        >>> for i, x in enumerate(np.concatenate([normal, shifted])):
        ...     _ = detector.update(x)
        ...     if detector.score >= detector.params.threshold:
        ...         print(f"detection at {i}, score {detector.score:.2f}")
        ...     for change in detector.changes:
        ...         print(f"alarm {'raised' if change.raised else 'cleared'} at {i}")
        detection at 600, score 1.00
        alarm raised at 602
    """

    Params = MetricEnsembleParams

    def _prepare(self) -> None:
        self._model = ContextModel(self.params)  # shares the parameters it needs
        self._block = self.params.window // _BLOCKS

    def _reset_state(self) -> None:
        self._model.reset()
        # Novelty moments: completed blocks, their totals, and the current block.
        self._blocks: deque[tuple[int, float, float]] = deque()
        self._n = 0
        self._s1 = 0.0
        self._s2 = 0.0
        self._block_n = 0
        self._block_s1 = 0.0
        self._block_s2 = 0.0
        self._resting = 0
        # Alarm state: the normal envelope, a baseline for messages, runs.
        self._env_lo = math.inf
        self._env_hi = -math.inf
        self._normal_lo = math.inf  # the envelope with its margin
        self._normal_hi = -math.inf
        self._baseline = math.nan
        self._run = 0
        self._run_peak = math.nan
        self._alarmed_for = 0
        self._alarm_lo = math.inf
        self._alarm_hi = -math.inf

    def _update_batch(self, batch: list[float]) -> None:
        step = self._model.step
        params = self.params
        warmup, threshold, block = params.warmup, params.threshold, self._block
        min_spread, order = params.min_spread, params.order
        erfc, log, sqrt = math.erfc, math.log, math.sqrt
        for x in batch:
            self._cursor += 1
            novelty, spatial = step(x)
            # Moments of the novelty over the last `window` points (block sums).
            self._block_n += 1
            self._block_s1 += novelty
            self._block_s2 += novelty * novelty
            n = self._n + self._block_n
            s1 = self._s1 + self._block_s1
            s2 = self._s2 + self._block_s2
            if self._block_n == block:
                self._close_block()
            if self._seen + self._cursor + 1 < warmup:
                self._score = 0.0
                self._learn_normal(x)
                continue
            mean = s1 / n
            var = s2 / n - mean * mean
            spread = sqrt(var) if var > min_spread * min_spread else min_spread
            tail = 0.5 * erfc((novelty - mean) / (spread * _SQRT2))
            score = log(tail + _TAIL_FLOOR) / _LOG_TAIL_FLOOR
            if spatial or score > 1.0:
                score = 1.0
            elif score < 0.0:
                score = 0.0
            if self._resting:
                self._resting -= 1
                self._score = 0.0
            else:
                self._score = score
            hot = False
            if score >= threshold:
                self._resting = params.rest
                # Right after the range widened every context looks new (the grids
                # stretched): that alone must not raise the alarm, a range break does.
                hot = self._model.steady > order
            if not hot and not self._normal_lo <= x <= self._normal_hi:
                hot = True
            if hot or self._alarm or self._run:
                self._judge(x, hot)
            else:  # the common case: a normal point, no alarm, no run under way
                self._learn_normal(x)

    def _close_block(self) -> None:
        self._blocks.append((self._block_n, self._block_s1, self._block_s2))
        self._n += self._block_n
        self._s1 += self._block_s1
        self._s2 += self._block_s2
        self._block_n, self._block_s1, self._block_s2 = 0, 0.0, 0.0
        if len(self._blocks) > _BLOCKS:
            n, s1, s2 = self._blocks.popleft()
            self._n -= n
            self._s1 -= s1
            self._s2 -= s2

    def _learn_normal(self, x: float) -> None:
        if x < self._env_lo or x > self._env_hi:
            self._widen_envelope(x, x)
        baseline = self._baseline
        self._baseline = x if math.isnan(baseline) else baseline + 0.02 * (x - baseline)

    def _widen_envelope(self, lo: float, hi: float) -> None:
        self._env_lo = min(self._env_lo, lo)
        self._env_hi = max(self._env_hi, hi)
        slack = self.params.margin * (self._env_hi - self._env_lo)
        self._normal_lo = self._env_lo - slack
        self._normal_hi = self._env_hi + slack

    def _judge(self, x: float, hot: bool) -> None:
        if not self._alarm and not hot:
            self._learn_normal(x)
        if hot == self._alarm:
            self._run = 0
        else:
            self._run += 1
            if self._run == 1 or abs(x - self._baseline) > abs(self._run_peak - self._baseline):
                self._run_peak = x
            if self._run >= self.params.consecutive:
                self._run = 0
                self._alarm = hot
                self._alarmed_for = 0
                self._alarm_lo, self._alarm_hi = math.inf, -math.inf
                self._note_change(hot, self._run_peak if hot else x, self._baseline)
        if self._alarm:
            self._alarm_lo = min(self._alarm_lo, x)
            self._alarm_hi = max(self._alarm_hi, x)
            self._alarmed_for += 1
            if self._alarmed_for >= self.params.adapt_after:
                # Too long for an episode: the new level is the new normal.
                self._widen_envelope(self._alarm_lo, self._alarm_hi)
                self._baseline = x
                self._alarm = False
                self._run = 0
                self._note_change(False, x, self._baseline, adapted=True)

    @property
    def baseline(self) -> float:
        """A slow moving average of the normal points (NaN before the first)."""
        return self._baseline

    @property
    def model(self) -> ContextModel:
        """The context model (read it, do not feed it)."""
        return self._model

"""MetricEnsemble: the default detector for a metric series nobody described."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from detectors.base import Timestamps
from detectors.metric.base import MetricDetector
from detectors.metric.context_batch import learn_many
from detectors.metric.contextual import ContextModel, ContextModelParams
from detectors.metric.likelihood import BLOCKS, NoveltyLikelihood
from detectors.params import larger_than

_NOT_STUCK, _STUCK_FROM_HERE, _STILL_STUCK = 0, 1, 2


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
        ge=2 * BLOCKS,
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
    jump_alarm_fraction: float = Field(
        default=0.07,
        ge=0,
        description="A level jump heats the alarm only when the moving average stands this "
        "fraction of the normal envelope's width from the baseline (0: every jump heats).",
    )
    coarse_step: int = Field(
        default=3,
        ge=2,
        description="Points averaged into one value of the second, coarse context model "
        "(patterns this many times longer).",
    )
    smoothing: int = Field(
        default=20,
        ge=1,
        description="Points of the moving average whose break out of its own range is a level "
        "jump.",
    )
    stuck_after: int = Field(
        default=20,
        ge=1,
        description="A run of identical values longer than any before by this many points is "
        "a stuck series.",
    )
    calibration_window: int = Field(
        default=5000,
        ge=1,
        description="Memory, in points, of the count of the context novelty's detections that "
        "calibrates its tail (exponentially decayed).",
    )
    calibration_allowance: float = Field(
        default=2.0,
        gt=0,
        description="Detections of the context novelty within that memory that its Gaussian "
        "tail is trusted for.",
    )
    calibration_strength: float = Field(
        default=0.2,
        ge=0,
        description="Score taken off the context novelty per tenfold excess of its detections "
        "over the allowance (0: no calibration).",
    )

    rules = (larger_than("adapt_after", "consecutive"),)


class MetricEnsemble(MetricDetector[MetricEnsembleParams]):
    """Context novelty at two time scales, level shifts, stuck values and range breaks.

    Five signals, each cheap and each from the past only:

    1. **Context novelty** (:class:`~detectors.metric.contextual.ContextModel`): the
       fraction of the latest value's short symbol sequences, on a few coarse
       grids over the running range, that the series never showed before,
       turned into an **anomaly likelihood**
       (:class:`~detectors.metric.likelihood.NoveltyLikelihood`): how far the
       novelty is above its own mean over the last ``window`` points, in standard
       deviations (floored at ``min_spread``), as a Gaussian tail on a log scale.
       A noisy series that always shows new contexts needs far more novelty to
       score high than a regular one. The Gaussian tail is too optimistic for
       heavy-tailed novelty, so it is **calibrated** on the series' own record:
       the novelty's detections (scores at ``threshold`` or above) are counted
       with a memory of ``calibration_window`` points, and each tenfold excess of
       that count over ``calibration_allowance`` takes ``calibration_strength``
       off the novelty's score (its tail probability is multiplied by the excess
       squared at 0.2).
    2. The same on a **coarse** copy of the series: the mean of every
       ``coarse_step`` points goes through a second context model and its own
       likelihood, so patterns ``coarse_step`` times longer count (scored at the
       last point of each group).
    3. **Range break**: the value lies beyond everything seen so far by more than
       ``margin`` times the range's width. Scores 1.
    4. **Level jump**: a moving average of the last ~``smoothing`` points
       (exponentially weighted) breaks out of the range it has itself shown
       (from point ``smoothing`` on) by the same margin: a shift of the local
       mean fast enough to outrun it, well inside the range of a spiky series.
       Scores 1.
    5. **Stuck series**: a run of identical values longer than any run before by
       ``stuck_after`` points (a frozen exporter, a flat-lined sensor). Scores 1,
       once per run.

    :attr:`score` is the largest of them. It is a *detection* score: when it
    reaches ``threshold`` the detector rests for ``rest`` points, reporting 0, so
    one episode makes one early detection rather than a run of them (what NAB
    rewards, and what an on-call wants).

    :attr:`alarm` says whether the series is in an anomalous state, with
    hysteresis. A point is *hot* if its unrested score reaches ``threshold`` (for
    the novelty, only when the range has not widened in the last ``order``
    points: right after it has, every context looks new; for a level jump, only
    when the moving average also stands ``jump_alarm_fraction`` of the normal
    envelope's width from the baseline: a young series' moving average has a
    narrow range and breaks it by chance), it lies outside the
    normal envelope (the range of past non-hot points, plus ``margin``), or the
    series is stuck. The alarm rises after ``consecutive`` hot points in a row
    and clears after ``consecutive`` normal ones, or after ``adapt_after``
    alarmed points, when the new level is taken as normal. No score and no alarm
    in the first ``warmup`` points.

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
        self._coarse_model = ContextModel(self.params)
        self._level_rate = 1.0 / self.params.smoothing

    def _reset_state(self) -> None:
        params = self.params
        self._model.reset()
        self._coarse_model.reset()
        self._likelihood = NoveltyLikelihood(params.window, params.min_spread, params.warmup)
        step = params.coarse_step
        self._coarse_likelihood = NoveltyLikelihood(
            params.window // step, params.min_spread, params.warmup // step
        )
        self._coarse_sum = 0.0
        self._coarse_n = 0
        self._detections = 0.0  # the novelty's recent detections, decayed (calibration)
        # The moving average and its range (level shifts).
        self._level = math.nan
        self._level_lo = math.inf
        self._level_hi = -math.inf
        # Runs of identical values: the current one, where it began, the longest before.
        self._last = math.nan
        self._run = 0
        self._run_from = 0
        self._longest_run = 0
        self._resting = 0
        # Alarm state: the normal envelope, a baseline for messages, runs of hot points.
        self._env_lo = math.inf
        self._env_hi = -math.inf
        self._normal_lo = math.inf  # the envelope with its margin
        self._normal_hi = -math.inf
        self._baseline = math.nan
        self._hot_run = 0
        self._run_peak = math.nan
        self._alarmed_for = 0
        self._alarm_lo = math.inf
        self._alarm_hi = -math.inf

    @classmethod
    def update_many(
        cls,
        detectors: Sequence[MetricEnsemble],
        values: Sequence[Any],
        timestamps: Sequence[Timestamps | None],
    ) -> None:
        """``detector.update(values, timestamps)`` for each, with the same results and states.

        The context models of all the detectors learn together, a point of every
        series per NumPy step (:func:`~detectors.metric.context_batch.learn_many`);
        the rest of each update runs detector by detector. Every input is checked
        before any detector learns.
        """
        admitted = [
            detector._admit(batch, times)
            for detector, batch, times in zip(detectors, values, timestamps, strict=True)
        ]
        finites = [finite for _, finite, _ in admitted]
        learnt = learn_many([detector._model for detector in detectors], finites)
        coarse_points = [
            detector._coarse_points(finite)
            for detector, finite in zip(detectors, finites, strict=True)
        ]
        coarse_learnt = learn_many(
            [detector._coarse_model for detector in detectors],
            [means for means, _ in coarse_points],
        )
        for i, (detector, (batch, finite, times)) in enumerate(
            zip(detectors, admitted, strict=True)
        ):
            if finite:
                novelty = detector._scores(learnt[i], coarse_points[i][1], coarse_learnt[i][0])
                detector._learn_admitted(
                    batch,
                    finite,
                    times,
                    functools.partial(detector._update_batch, novelties=novelty),
                )

    def _update_batch(self, batch: list[float], novelties: list[float] | None = None) -> None:
        """Learn ``batch``; ``novelties``: its :meth:`_novelty`, when already computed."""
        params = self.params
        warmup, threshold, order, rest = params.warmup, params.threshold, params.order, params.rest
        index = self._seen - 1
        # The state the common point changes, in local variables; the uncommon one
        # goes through _judge with it written back.
        cursor, score, resting, baseline = self._cursor, self._score, self._resting, self._baseline
        env_lo, env_hi = self._env_lo, self._env_hi
        normal_lo, normal_hi = self._normal_lo, self._normal_hi
        calm = not self._alarm and not self._hot_run  # no alarm, no run of hot points under way
        isnan = math.isnan
        if novelties is None:
            novelties = self._novelty(batch)
        confirm = params.jump_alarm_fraction
        signals = zip(batch, novelties, self._jumps(batch), self._stuck(batch), strict=True)
        for x, novelty, jump, stuck in signals:
            jumped = jump is not None
            index += 1
            cursor += 1
            if index + 1 < warmup:
                score = 0.0
            else:
                signal = 1.0 if jumped or stuck == _STUCK_FROM_HERE else novelty
                if resting:
                    resting -= 1
                    score = 0.0
                else:
                    score = signal
                hot = stuck != _NOT_STUCK
                if signal >= threshold:
                    resting = rest
                    if jump is not None and abs(jump - baseline) < confirm * (env_hi - env_lo):
                        # A young series' moving average has shown little of its swing
                        # and breaks its narrow range by chance: such a jump scores (NAB
                        # rewards an early guess) but only a novelty may heat the point.
                        hot = hot or (novelty >= threshold and self._model.steady > order)
                    else:
                        # Right after the range widened every context looks new (the
                        # grids stretched): that alone must not raise the alarm, a range
                        # break does.
                        hot = hot or jumped or self._model.steady > order
                if not hot and not normal_lo <= x <= normal_hi:
                    hot = True
                if hot or not calm:
                    self._cursor, self._score, self._baseline = cursor, score, baseline
                    self._judge(x, hot)
                    baseline, calm = self._baseline, not self._alarm and not self._hot_run
                    env_lo, env_hi = self._env_lo, self._env_hi
                    normal_lo, normal_hi = self._normal_lo, self._normal_hi
                    continue
            # A normal point, no alarm, no run under way (or the warm-up): _learn_normal.
            if x < env_lo or x > env_hi:
                self._widen_envelope(x, x)
                env_lo, env_hi = self._env_lo, self._env_hi
                normal_lo, normal_hi = self._normal_lo, self._normal_hi
            baseline = x if isnan(baseline) else baseline + 0.02 * (x - baseline)
        self._cursor, self._score, self._resting, self._baseline = cursor, score, resting, baseline

    def _novelty(self, batch: list[float]) -> list[float]:
        """Per point: the likelier of the two context novelties (calibrated), or 1 for a break."""
        learnt = self._model.learn(batch)
        means, ends = self._coarse_points(batch)
        coarse = self._coarse_model.learn(means)[0] if means else []
        return self._scores(learnt, ends, coarse)

    def _coarse_points(self, batch: list[float]) -> tuple[list[float], list[int]]:
        """The coarse model's points: the mean of each group of coarse_step points.

        Returned with the positions of the groups' last points, where they are scored.
        """
        group = self.params.coarse_step
        coarse_sum, coarse_n = self._coarse_sum, self._coarse_n
        means: list[float] = []
        ends: list[int] = []
        for i, x in enumerate(batch):
            coarse_sum += x
            coarse_n += 1
            if coarse_n == group:
                means.append(coarse_sum / group)
                ends.append(i)
                coarse_sum, coarse_n = 0.0, 0
        self._coarse_sum, self._coarse_n = coarse_sum, coarse_n
        return means, ends

    def _scores(
        self, learnt: tuple[list[float], list[bool]], ends: list[int], coarse: list[float]
    ) -> list[float]:
        """:meth:`_novelty` from the two models' outputs (``coarse``: at the points ``ends``)."""
        params = self.params
        novelties, spatials = learnt
        scores = self._likelihood.scores(novelties)  # learnt from every point, range breaks too
        if ends:
            coarse_scores = self._coarse_likelihood.scores(coarse)
            for i, score in zip(ends, coarse_scores, strict=True):
                scores[i] = max(scores[i], score)
        strength = params.calibration_strength
        if not strength:
            return [
                1.0 if spatial else score for score, spatial in zip(scores, spatials, strict=True)
            ]
        # Counted before the calibration (and through rests): how often the Gaussian
        # tail has called this series anomalous lately.
        threshold, allowance = params.threshold, params.calibration_allowance
        keep = 1.0 - 1.0 / params.calibration_window
        detections = self._detections
        for i, score in enumerate(scores):
            detections = detections * keep + (score >= threshold)
            if spatials[i]:
                scores[i] = 1.0
            elif detections > allowance:
                scores[i] = max(0.0, score - strength * math.log10(detections / allowance))
        self._detections = detections
        return scores

    def _jumps(self, batch: list[float]) -> list[float | None]:
        """Per point: the moving average where it leaves its own range by the margin, or None."""
        params = self.params
        rate, margin, warmup, settled = (
            self._level_rate,
            params.margin,
            params.warmup,
            params.smoothing,
        )
        level, low, high = self._level, self._level_lo, self._level_hi
        index = self._seen - 1
        jumps: list[float | None] = []
        for x in batch:
            index += 1
            level = x if index == 0 else level + rate * (x - level)
            jumped = False
            if index >= settled:  # before, the average still leans on its first values
                if level > high:
                    jumped = index >= warmup and level > high + margin * (high - low)
                    high = level
                if level < low:
                    jumped = index >= warmup and level < low - margin * (high - low)
                    low = level
            jumps.append(level if jumped else None)
        self._level, self._level_lo, self._level_hi = level, low, high
        return jumps

    def _stuck(self, batch: list[float]) -> list[int]:
        """Per point: not stuck, stuck from this point on, or still stuck.

        Stuck: a run of identical values, begun after the warmup, longer than any
        run before by ``stuck_after``; for ``adapt_after`` points (then it is the
        series' new normal, as a lasting level is).
        """
        params = self.params
        warmup, after, lasting = params.warmup, params.stuck_after, params.adapt_after
        last, run, run_from, longest = self._last, self._run, self._run_from, self._longest_run
        index = self._seen - 1
        states = []
        for x in batch:
            index += 1
            state = _NOT_STUCK
            if x == last:
                run += 1
                beyond = run - longest - after
                if run_from >= warmup and 0 < beyond <= lasting:
                    state = _STUCK_FROM_HERE if beyond == 1 else _STILL_STUCK
            else:
                longest = max(longest, run)
                run, run_from, last = 0, index, x
            states.append(state)
        self._last, self._run, self._run_from, self._longest_run = last, run, run_from, longest
        return states

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
            self._hot_run = 0
        else:
            self._hot_run += 1
            if self._hot_run == 1 or abs(x - self._baseline) > abs(self._run_peak - self._baseline):
                self._run_peak = x
            if self._hot_run >= self.params.consecutive:
                self._hot_run = 0
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
                self._hot_run = 0
                self._note_change(False, x, self._baseline, adapted=True)

    @property
    def baseline(self) -> float:
        """A slow moving average of the normal points (NaN before the first)."""
        return self._baseline

    @property
    def model(self) -> ContextModel:
        """The context model of the raw values (read it, do not feed it)."""
        return self._model

    @property
    def coarse_model(self) -> ContextModel:
        """The context model of the ``coarse_step``-point means (read it, do not feed it)."""
        return self._coarse_model

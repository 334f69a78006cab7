"""SeasonalBaseline: a robust baseline per hour of the day (or of the week)."""

from __future__ import annotations

import math
import statistics
from typing import Literal, NamedTuple

from pydantic import Field

from detectors.metric.base import MetricDetector
from detectors.metric.hysteresis import Hysteresis
from detectors.params import DetectorParams, at_most, larger_than

_MAD_TO_SIGMA = 1.4826  # 1.4826 * MAD estimates the standard deviation of normal data
_MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)  # the same for the mean absolute deviation
_BUCKETS = {"day": 24, "week": 168}
_HOUR = 3600.0
_MONDAY = 72  # hours from Monday 00:00 to the epoch (a Thursday)


class SeasonalBaselineParams(DetectorParams):
    """Parameters of :class:`SeasonalBaseline`."""

    season: Literal["day", "week"] = Field(
        default="day", description="Buckets by hour of the day or of the week."
    )
    min_bucket_points: int = Field(
        default=20, ge=5, description="Values a bucket needs before it judges."
    )
    memory: int = Field(
        default=60, ge=5, description="Memory of a ready bucket's baseline, in its points."
    )
    window: int = Field(default=240, ge=10, description="Memory of the global baseline, in points.")
    warmup: int = Field(default=30, ge=5, description="Points before the global baseline judges.")
    threshold: float = Field(default=5.0, gt=0, description="Robust z-score of a hot point.")
    min_delta: float = Field(
        default=0.0,
        ge=0,
        description="Distance from the baseline also required, in the series' unit.",
    )
    min_spread: float = Field(
        default=0.02, ge=0, description="Floor of the spread, as a fraction of the level."
    )
    clip: float = Field(
        default=3.0, gt=0, description="Baseline updates are clipped at this many spreads (Huber)."
    )
    direction: Literal["both", "up", "down"] = Field(
        default="both", description="Which deviations count."
    )
    consecutive: int = Field(
        default=3, ge=1, description="Hot (or normal) points in a row to raise (or clear)."
    )
    adapt_after: int = Field(
        default=500, description="Alarmed points before the level shift is adopted."
    )
    utc_offset_hours: float = Field(
        default=0.0,
        gt=-24,
        lt=24,
        description="The clock the buckets follow, as an offset from UTC.",
    )
    interval: float = Field(
        default=60.0, gt=0, description="Seconds between points when no timestamps are given."
    )

    rules = (at_most("warmup", "window"), larger_than("adapt_after", "consecutive"))


class SeasonalBaseline(MetricDetector[SeasonalBaselineParams]):
    """Judges each point against the normal level of its hour of the day (or week).

    CPU, memory and throughput follow the clock: a nightly batch job or the
    afternoon peak is normal at its hour and anomalous at any other. Points fall
    in a *bucket* by event time: hour of the day (``season="day"``, 24 buckets)
    or of the week (``"week"``, 168, Monday 00:00 first), in UTC shifted by
    ``utc_offset_hours``. Each bucket keeps a robust baseline: its first
    ``min_bucket_points`` values, *all* of them (so the bucket learns what its
    hour looks like, peak included), give a median and MAD; from then on a
    Huber-clipped exponential average (memory ``memory`` points of that bucket)
    tracks location and spread from its normal points. Until a bucket is ready
    the *global* baseline (same estimator over every normal point, memory
    ``window``, after ``warmup`` points) judges, as a non-seasonal detector would.

    A point is hot when its robust z-score (spread floored at ``min_spread``
    times the level) is beyond ``threshold`` in the watched ``direction`` and it
    is at least ``min_delta`` away. Alarm after ``consecutive`` hot points,
    cleared after as many normal ones; hot points stay out of the baselines.
    After ``adapt_after`` alarmed points the alarm's mean offset is added to
    every baseline: the level moved, the seasonal shape is kept.

    The event time comes from ``update(values, timestamps)``; without it points
    are taken ``interval`` seconds apart from the last one seen (from 0).
    State: two floats and a count per bucket, plus the warm-up values of the
    buckets not ready yet.

    Parameters: :class:`SeasonalBaselineParams`.

    Example (5-minute CPU samples; a nightly job at 02:00, then a real incident):
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> times = np.arange(0, 10 * 86400, 300.0)
        >>> hour = times // 3600 % 24
        >>> cpu = np.where(hour == 2, 85.0, 30.0) + rng.normal(0, 2, times.size)
        >>> cpu[(times >= 8 * 86400 + 14 * 3600) & (times < 8 * 86400 + 15 * 3600)] = 85.0
        >>> detector = SeasonalBaseline()
        >>> for start in range(0, times.size, 60):
        ...     batch = slice(start, start + 60)
        ...     for change in detector.update(cpu[batch], times[batch]).changes:
        ...         t = times[start + change.index]
        ...         if change.raised:
        ...             print(f"day {t // 86400:.0f} {t % 86400 / 3600:05.2f}h: {change.observed:.0f}%")
        day 0 02.67h: 84%
        day 1 02.17h: 85%
        day 8 14.17h: 85%

    The nightly job alarms while hour 2 is still learning (20 points: two
    nights at 5-minute samples), then never again; the same level at 14:00 does.
    """

    Params = SeasonalBaselineParams

    def _prepare(self) -> None:
        self._buckets = _BUCKETS[self.params.season]

    def _reset_state(self) -> None:
        n = self._buckets
        self._loc = [math.nan] * n  # per bucket; NaN until ready
        self._scale = [math.nan] * n
        self._count = [0] * n
        self._pending: dict[int, list[float]] = {}  # warm-up values of unready buckets
        self._global_loc = math.nan
        self._global_scale = math.nan
        self._global_pending: list[float] = []
        self._time = -self.params.interval  # event time of the last point
        self._hysteresis = Hysteresis(self.params.consecutive)
        self._offset_sum = 0.0  # sum of (value - baseline) while alarmed

    def _update_batch(self, batch: list[float]) -> None:
        times = self._batch_times
        params = self.params
        offset = params.utc_offset_hours * _HOUR
        interval = params.interval
        # The parameters read at every point, read from the model once per batch.
        knobs = _Knobs(
            params.min_bucket_points,
            params.min_spread,
            params.direction,
            params.threshold,
            params.min_delta,
            params.memory,
            params.window,
            params.adapt_after,
            params.clip,
        )
        for i, value in enumerate(batch):
            self._cursor += 1
            self._time = times[i] if times is not None else self._time + interval
            hours = math.floor((self._time + offset) / _HOUR)
            bucket = (hours + (_MONDAY if self._buckets == 168 else 0)) % self._buckets
            self._step(value, bucket, knobs)

    def _step(self, value: float, bucket: int, params: _Knobs) -> None:
        ready = self._count[bucket] >= params.min_bucket_points
        if ready:
            loc, scale = self._loc[bucket], self._scale[bucket]
        else:
            loc, scale = self._global_loc, self._global_scale
            self._warm_bucket(bucket, value, params.min_bucket_points)
        if math.isnan(loc):  # nothing can judge yet: learn only
            self._score = 0.0
            self._warm_global(value)
            return
        spread = max(scale, params.min_spread * abs(loc), 1e-9)
        z = (value - loc) / spread
        direction = params.direction
        signed = z if direction == "up" else -z if direction == "down" else abs(z)
        self._score = signed / (signed + params.threshold) if signed > 0 else 0.0
        hot = signed > params.threshold and abs(value - loc) >= params.min_delta
        if not hot:
            if ready:
                self._loc[bucket], self._scale[bucket] = _huber(
                    loc, scale, value, params.memory, params
                )
            if math.isnan(self._global_loc):
                self._warm_global(value)
            else:
                self._global_loc, self._global_scale = _huber(
                    self._global_loc, self._global_scale, value, params.window, params
                )
        if self._hysteresis.step(self._alarm, hot, value, signed):
            self._alarm = hot
            self._offset_sum = 0.0
            self._note_change(hot, self._hysteresis.peak if hot else value, loc)
        if self._alarm:
            self._offset_sum += value - loc
            if self._hysteresis.alarmed_for >= params.adapt_after:
                self._adopt_shift(value, loc)

    def _warm_bucket(self, bucket: int, value: float, needed: int) -> None:
        pending = self._pending.setdefault(bucket, [])
        pending.append(value)
        self._count[bucket] += 1
        if self._count[bucket] >= needed:
            self._loc[bucket], self._scale[bucket] = _median_mad(self._pending.pop(bucket))

    def _warm_global(self, value: float) -> None:
        self._global_pending.append(value)
        if len(self._global_pending) >= self.params.warmup:
            self._global_loc, self._global_scale = _median_mad(self._global_pending)
            self._global_pending = []

    def _adopt_shift(self, value: float, baseline: float) -> None:
        # A lasting shift: move every baseline by the alarm's mean offset, keep the shape.
        shift = self._offset_sum / self._hysteresis.alarmed_for
        self._loc = [loc + shift for loc in self._loc]
        self._global_loc += shift
        self._alarm = False
        self._hysteresis.reset()
        self._note_change(False, value, baseline, adapted=True)

    @property
    def ready_buckets(self) -> int:
        """Buckets with enough points to judge on their own."""
        minimum = self.params.min_bucket_points
        return sum(c >= minimum for c in self._count)

    def bucket_baseline(self, bucket: int) -> float:
        """The level of one bucket (NaN until it is ready)."""
        return self._loc[bucket]


class _Knobs(NamedTuple):
    """The parameters :meth:`SeasonalBaseline._step` reads at every point.

    A pydantic model's attribute reads go through its ``__getattr__`` hook (about
    three times a plain one's cost): once per batch that is nothing, per point not.
    """

    min_bucket_points: int
    min_spread: float
    direction: str
    threshold: float
    min_delta: float
    memory: int
    window: int
    adapt_after: int
    clip: float


def _huber(
    loc: float, scale: float, value: float, memory: int, params: _Knobs
) -> tuple[float, float]:
    # Clipped updates: one odd-but-not-hot point moves the baseline a bounded amount.
    rate = 1.0 / memory
    limit = params.clip * max(scale, params.min_spread * abs(loc), 1e-9)
    deviation = min(max(value - loc, -limit), limit)
    loc += rate * deviation
    scale += rate * (abs(deviation) * _MEAN_ABS_TO_SIGMA - scale)
    return loc, scale


def _median_mad(values: list[float]) -> tuple[float, float]:
    median = statistics.median(values)
    return median, statistics.median(abs(v - median) for v in values) * _MAD_TO_SIGMA

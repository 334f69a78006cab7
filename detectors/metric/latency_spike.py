"""LatencySpike: a robust median/MAD baseline with hysteresis for latency series."""

from __future__ import annotations

import math
from collections import deque

from pydantic import Field

from detectors.metric.base import MetricDetector
from detectors.metric.robust import median_and_mad
from detectors.params import DetectorParams, at_most, larger_than

# 1.4826 * MAD estimates the standard deviation of normally distributed data.
_MAD_TO_SIGMA = 1.4826


class LatencySpikeParams(DetectorParams):
    """Parameters of :class:`LatencySpike`."""

    window: int = Field(default=120, ge=10, description="Points in the rolling baseline.")
    threshold: float = Field(
        default=6.0, gt=0, description="Robust z-score that counts as a spike."
    )
    min_ratio: float = Field(
        default=1.5, ge=1, description="Observed/baseline ratio also required for a spike."
    )
    min_delta: float = Field(
        default=1.0,
        ge=0,
        description="Observed minus baseline also required, in the series' unit (ms).",
    )
    consecutive: int = Field(
        default=3, ge=1, description="Spiking (or normal) points in a row to raise (or clear)."
    )
    warmup: int = Field(default=30, ge=1, description="Points learned before any alarm.")
    min_spread: float = Field(
        default=0.05, ge=0, description="Floor of the spread, as a fraction of the baseline."
    )
    adapt_after: int | None = Field(
        default=None,
        description="Alarmed points before the level becomes the new baseline "
        "(default: five windows).",
    )

    rules = (at_most("warmup", "window"), larger_than("adapt_after", "consecutive"))


class LatencySpike(MetricDetector[LatencySpikeParams]):
    """Flags latency that jumps well above its recent robust baseline.

    The baseline is the median of the last ``window`` normal points; the spread is
    their MAD (floored at ``min_spread`` times the median, so a very steady series
    does not alarm on noise). A point spikes when its robust z-score exceeds
    ``threshold``, it is at least ``min_ratio`` times the baseline *and* at least
    ``min_delta`` above it (so a series sitting near zero does not alarm on a
    0.01 ms blip). The alarm rises after ``consecutive`` spiking points and clears
    after as many normal ones. Spiking points stay out of the baseline, so an
    incident does not teach the detector that slow is normal, until the alarm
    has lasted ``adapt_after`` points: then the level is taken as the new normal
    (a lasting shift, not a spike) and the alarm clears.

    Parameters: :class:`LatencySpikeParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> normal = rng.normal(50, 3, 300)
        >>> spike = rng.normal(400, 30, 20)
        >>> detector = LatencySpike()
        >>> for i, x in enumerate(np.concatenate([normal, spike])):
        ...     if detector.update(x).alarm:
        ...         print(f"alarm at {i}, baseline {detector.baseline:.0f} ms")
        ...         break
        alarm at 302, baseline 50 ms
    """

    Params = LatencySpikeParams

    def _prepare(self) -> None:
        window = self.params.window
        adapt_after = self.params.adapt_after
        self._adapt_after = adapt_after if adapt_after is not None else 5 * window
        self._refresh_every = max(1, window // 8)

    def _reset_state(self) -> None:
        self._history: deque[float] = deque(maxlen=self.params.window)
        self._recent: deque[float] = deque(maxlen=self.params.window)  # values while alarmed
        self._run = 0  # points in a row that disagree with the alarm state
        self._alarmed_for = 0
        self._last = float("nan")
        self._peak = float("nan")
        self._run_peak = float("nan")
        self._baseline = float("nan")
        self._spread = float("nan")
        self._baseline_version = 0
        self._judged_since_refresh = 0

    def _update_batch(self, batch: list[float]) -> None:
        # The median/MAD are the costly part, so they are recomputed every
        # `refresh_every` judged points rather than per point or per micro-batch:
        # the result does not depend on how the stream was batched, and a batch
        # spread over many series costs no more than one baseline per refresh.
        warmup = self.params.warmup
        start, end = 0, len(batch)
        while start < end:
            missing = warmup - len(self._history)
            if missing > 0:  # warm-up: learn, judge nothing
                self._score = 0.0
                stop = min(start + missing, end)
                if not self._alarm and not self._run:
                    # As in every warm-up (it follows a reset or an adopted level):
                    # what _step does with these points, in one go.
                    self._history.extend(batch[start:stop])
                    self._cursor += stop - start
                    self._last = batch[stop - 1]
                else:
                    for value in batch[start:stop]:
                        self._step(value, spikes=False)
                start = stop
                continue
            if self._judged_since_refresh >= self._refresh_every or math.isnan(self._baseline):
                self._refresh_baseline()
            start = self._judge(
                batch, start, start + self._refresh_every - self._judged_since_refresh
            )

    def _refresh_baseline(self) -> None:
        median, mad = median_and_mad(self._history)
        self._baseline = median
        self._spread = max(mad * _MAD_TO_SIGMA, self.params.min_spread * abs(median), 1e-9)
        self._baseline_version += 1
        self._judged_since_refresh = 0

    def _judge(self, batch: list[float], start: int, stop: int) -> int:
        """Judge ``batch[start:stop]`` against the current baseline; return where it stopped.

        Stops right after a point that adopted a new level, so the rest is judged
        (or learned, if the new history is short) exactly as it would be had the
        batch ended there: results never depend on batch boundaries. The common
        point (not spiking, no alarm, no run under way) is learnt here with the
        state in local variables; any other goes through :meth:`_step`.
        """
        median, spread, version = self._baseline, self._spread, self._baseline_version
        params = self.params
        floor = max(params.min_ratio * median, median + params.min_delta)
        threshold = params.threshold
        history, judged, cursor = self._history, self._judged_since_refresh, self._cursor
        quiet = not self._alarm and not self._run
        score = self._score
        position = start
        for value in batch[start:stop]:
            position += 1
            z = (value - median) / spread
            # z is +inf when value - median overflows (samples near 1e308): the score
            # is 1 then, not inf/inf = NaN.
            score = (1.0 if z == math.inf else z / (z + threshold)) if z > 0 else 0.0
            judged += 1  # before the step: adopting resets it to 0
            spikes = z > threshold and value >= floor
            if quiet and not spikes:
                history.append(value)
                cursor += 1
                continue
            self._score, self._judged_since_refresh, self._cursor = score, judged, cursor
            self._step(value, spikes)
            if self._baseline_version != version:
                return position
            history, judged, cursor = self._history, self._judged_since_refresh, self._cursor
            quiet = not self._alarm and not self._run
        self._score, self._judged_since_refresh, self._cursor = score, judged, cursor
        self._last = batch[position - 1]
        return position

    def _step(self, value: float, spikes: bool) -> None:
        """Learn one point the caller judged (and scored)."""
        self._cursor += 1
        self._last = value
        if not spikes:
            self._history.append(value)
        if spikes == self._alarm:
            self._run = 0
        else:
            self._run += 1
            self._run_peak = value if self._run == 1 else max(self._run_peak, value)
            if self._run >= self.params.consecutive:
                self._set_alarm(spikes, self._run_peak if spikes else value)
        if self._alarm:
            self._peak = max(self._peak, value)
            self._recent.append(value)
            self._alarmed_for += 1
            if self._alarmed_for >= self._adapt_after:
                self._adopt_recent_level(value)

    def _set_alarm(self, raised: bool, observed: float, adapted: bool = False) -> None:
        self._alarm = raised
        self._run = 0
        self._alarmed_for = 0
        self._recent.clear()
        self._peak = observed if raised else float("nan")
        self._note_change(raised, observed, self._baseline, adapted)

    def _adopt_recent_level(self, value: float) -> None:
        # The alarm has lasted too long to be a spike: what it sees is the new normal.
        self._history = deque(self._recent, maxlen=self.params.window)
        self._set_alarm(False, value, adapted=True)
        self._refresh_baseline()

    @property
    def baseline(self) -> float:
        """The current normal level (median of the baseline window); NaN in warm-up."""
        return self._baseline

    @property
    def last(self) -> float:
        """The latest finite value seen."""
        return self._last

    @property
    def peak(self) -> float:
        """The highest value of the current alarm; NaN when not alarmed."""
        return self._peak

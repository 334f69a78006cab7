"""ErrorRatio: a rise of an error *ratio* in [0, 1], judged as a binomial proportion."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field
from scipy.special import betainc

from detectors.distributions import betabinom_log_pmf
from detectors.metric.tail_rise import TailRiseDetector, TailRiseParams

_PRIOR = 0.5  # Jeffreys prior on the rate: an all-zero history is not certainty
# Below this many expected errors per interval the ratio is visibly discrete (0, 1/n,
# 2/n...): the tail is summed exactly, over at most _MAX_TERMS counts (beyond, the
# terms are negligible at such small means).
_DISCRETE_BELOW = 50.0
_EXACT_ABOVE = 0.1  # the continuous form decides the bulk; the exact sum only the tail


class ErrorRatioParams(TailRiseParams):
    """Parameters of :class:`ErrorRatio`."""

    min_delta: float = Field(
        default=0.001,
        ge=0,
        lt=1,
        description="Ratio minus baseline also required (0.001 = 0.1 points).",
    )
    max_trials: float = Field(
        default=100_000.0,
        ge=2,
        description="Cap of the effective sample size per interval (the requests per "
        "interval, if known).",
    )
    min_errors: float = Field(
        default=1.5,
        ge=0,
        description="Errors an interval must amount to (ratio times the effective sample "
        "size) to be evidence of a rise: one error among a handful of requests is not.",
    )


class ErrorRatio(TailRiseDetector[ErrorRatioParams]):
    """Flags an error ratio (errors / requests per interval) above its learnt rate.

    A ratio is a proportion ``k / n``: its spread depends on the rate and on the
    number of requests behind it, so 2% is alarming for a service that serves
    100,000 requests a minute at 1% and noise for one that serves 50. Prometheus
    ratios do not carry ``n``, so the detector learns an *effective sample size*
    from the series' own dispersion: for a binomial proportion
    ``var = p (1 - p) / n``, hence ``n_eff = p (1 - p) / var`` from the decayed
    mean ``p`` and variance ``var`` (memory ``window`` points) of the ratios
    that were not spikes, capped at ``max_trials`` (set it to the requests per
    interval if you know them). Extra-binomial noise (bursty traffic, retries)
    lowers ``n_eff``, so it widens the law instead of raising false alarms.

    The next ratio's law is the beta-binomial predictive of ``n_eff`` trials
    given the baseline (rate posterior ``Beta(p W + 0.5, (1 - p) W + 0.5)``,
    ``W = n_eff`` times the baseline's weight in points), taken in its continuous
    form: a Beta law with the beta-binomial's mean and variance, whose upper tail
    is the p-value. A ratio spikes when that tail is at most ``p_value`` *and* it
    is at least ``min_ratio`` times the rate and ``min_delta`` above it *and* it
    amounts to ``min_errors`` errors or more (ratio times ``n_eff``): at a handful
    of requests per interval one error is a large ratio, and a rare-error rate
    learnt from a few hundred intervals is too uncertain to call it a spike;
    such an interval is learnt as normal (kept out, it would bias the rate down). Only
    increases count. Values outside [0, 1] are clipped (a percentage would read
    as 100%: feed fractions). Score, hysteresis and adaptation are those of
    :class:`~detectors.metric.count_spike.CountSpike`.

    Parameters: :class:`ErrorRatioParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> requests = rng.poisson(2000, 420)  # per interval; the detector never sees it
        >>> rate = np.r_[np.full(400, 0.01), np.full(20, 0.02)]  # 1% errors, then 2%
        >>> ratios = rng.binomial(requests, rate) / requests
        >>> detector = ErrorRatio()
        >>> for i, x in enumerate(ratios):
        ...     for change in detector.update(x).changes:
        ...         print(f"error ratio up at {i}: {change.observed:.3f} vs {change.baseline:.3f}")
        error ratio up at 402: 0.020 vs 0.010
        >>> print(f"learnt n_eff ~ {round(detector.effective_trials, -2):.0f} requests")
        learnt n_eff ~ 2200 requests
    """

    Params = ErrorRatioParams

    def _clip(self, value: float) -> float:
        return min(max(value, 0.0), 1.0)

    def _trials(self, rate: float) -> float:
        var = self._s2 / self._n - rate * rate
        binomial = rate * (1.0 - rate)
        max_trials = self.params.max_trials
        if var * max_trials <= binomial:  # as steady as max_trials trials, or steadier
            return max_trials
        return max(binomial / var, 2.0)  # one trial has no continuous form

    def _upper_tail(self, ratio: float, rate: float) -> float:
        """``P(R >= ratio)`` under the moment-matched beta-binomial predictive."""
        trials = self._trials(rate)
        weight = trials * self._n
        a = rate * weight + _PRIOR
        b = (1.0 - rate) * weight + _PRIOR
        mean = a / (a + b)
        # Beta-binomial variance of K / trials: binomial part times the overdispersion.
        var = mean * (1.0 - mean) / trials * (trials + a + b) / (1.0 + a + b)
        if ratio <= 0.0:
            return 1.0
        size = max(mean * (1.0 - mean) / var - 1.0, 1e-9)  # alpha + beta of the matched Beta
        alpha, beta = mean * size, (1.0 - mean) * size
        # P(R >= r) = 1 - I_r(alpha, beta) = I_{1-r}(beta, alpha)
        tail = float(betainc(beta, alpha, 1.0 - ratio))
        if tail < _EXACT_ABOVE and trials * mean < _DISCRETE_BELOW:
            return _beta_binomial_tail(ratio, trials, a, b)
        return tail

    def _is_evidence(self, value: float, baseline: float) -> bool:
        return value * self._trials(baseline) >= self.params.min_errors

    @property
    def effective_trials(self) -> float:
        """The effective sample size per interval learnt from the dispersion (NaN before)."""
        return self._trials(self._s1 / self._n) if self._n else math.nan


def _beta_binomial_tail(ratio: float, trials: float, a: float, b: float) -> float:
    """``P(K >= round(ratio n))`` for ``K ~ BetaBinomial(n = round(trials), a, b)``."""
    n = max(2, round(trials))
    k = round(ratio * n)
    if k <= 0:
        return 1.0
    # Beyond the mean plus ~10 standard deviations the terms are negligible (mean < 50).
    expected = n * a / (a + b)
    last = min(n, max(k, round(expected + 10.0 * math.sqrt(expected) + 20.0)))
    ks = np.arange(k, last + 1, dtype=np.float64)
    return min(1.0, float(np.exp(betabinom_log_pmf(ks, n, a, b)).sum()))

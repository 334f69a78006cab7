"""CountSpike: a rise of per-interval event counts (errors, restarts), judged as counts."""

from __future__ import annotations

from scipy.special import betainc

from detectors.metric.tail_rise import TailRiseDetector, TailRiseParams

_PRIOR_SHAPE = 0.5  # Jeffreys prior on the Poisson rate: an all-zero history is not certainty


class CountSpikeParams(TailRiseParams):
    """Parameters of :class:`CountSpike`."""


class CountSpike(TailRiseDetector[CountSpikeParams]):
    """Flags per-interval counts well above what the series' count law predicts.

    Error counts are not Gaussian levels: they are small, skewed and often zero,
    and their spread grows with their mean. The baseline is a negative-binomial
    predictive law for the next count, learnt from exponentially decayed sums
    (memory ``window`` points) of the counts that were not spikes:

    - mean ``m``: the decayed mean count;
    - size ``r`` from two variance terms, ``1/r = 1/r_rate + 1/r_disp``: the
      uncertainty of the rate itself (Gamma-Poisson posterior with a Jeffreys
      prior, ``r_rate = sum + 0.5``; this keeps an all-zero history from making
      one error a certainty) and the series' own overdispersion
      (``r_disp = m² / (var - m)`` when the variance exceeds the mean, else none:
      a Poisson law).

    A count spikes when its upper-tail probability ``P(X >= count)`` is at most
    ``p_value`` *and* it is at least ``min_ratio`` times ``m`` and ``min_delta``
    above it (two errors more is not an incident on any law). Only increases
    count: fewer errors is good news. Non-integer counts (Prometheus
    ``increase()`` extrapolates) use the law's continuous extension.
    ``score = s / (s + s_p)`` with ``s = -log10 P`` and ``s_p = -log10 p_value``,
    so it is 0.5 at the threshold. The alarm rises after ``consecutive`` spiking
    intervals and clears after as many normal ones; spikes stay out of the
    baseline (so do counts in the upper 1% tail, which would otherwise teach it
    the start of an incident) until the alarm has lasted ``adapt_after`` points, when their level
    becomes the new normal.

    Parameters: :class:`CountSpikeParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> counts = np.concatenate([rng.poisson(0.3, 500), rng.poisson(6, 20)])
        >>> detector = CountSpike()
        >>> for i, x in enumerate(counts):
        ...     for change in detector.update(x).changes:
        ...         print(f"errors up at {i}: {change.observed:.0f} vs {change.baseline:.2f}")
        errors up at 502: 7 vs 0.28
    """

    Params = CountSpikeParams

    def _clip(self, value: float) -> float:
        return max(value, 0.0)  # a count below zero is no count: the law has none

    def _upper_tail(self, count: float, mean: float) -> float:
        """``P(X >= count)`` under the negative-binomial predictive law."""
        if count <= 0:
            return 1.0
        inv_size = 1.0 / (self._s1 + _PRIOR_SHAPE)
        var = self._s2 / self._n - mean * mean
        if var > mean > 0 and mean * mean > 0:  # (a subnormal mean squares to 0)
            inv_size += (var - mean) / (mean * mean)
        size = 1.0 / inv_size
        # The prior's share of the mean: an all-zero history predicts ~0.5/n, not 0.
        m = max(mean, _PRIOR_SHAPE / self._n)
        # NB(size, m): P(X >= x) = I_{m/(size+m)}(x, size), the regularised beta.
        return float(betainc(count, size, m / (size + m)))

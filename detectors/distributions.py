"""The detectors' null distributions: upper quantiles and tails, from ``scipy.special``.

``scipy.stats`` costs seconds of import (its ~100 distributions are built at
import time), paid by every worker start; the drift thresholds need five
inverse survival functions only, and ``ErrorRatio`` a beta-binomial tail.
``tests/unit/detectors/test_distributions.py`` pins each quantile to
``scipy.stats`` over a grid.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import bdtrc, betaln, chdtri, gammaln, ndtri, stdtrit


def chi2_isf(alpha: float, dof: float) -> float:
    """``x`` with P(X > x) = alpha for a chi-square of ``dof`` degrees of freedom."""
    return float(chdtri(dof, alpha))


def normal_isf(alpha: float) -> float:
    """``z`` with P(Z > z) = alpha for a standard normal."""
    return -float(ndtri(alpha))


def student_t_isf(alpha: float, dof: float) -> float:
    """``t`` with P(T > t) = alpha for Student's t with ``dof`` degrees of freedom."""
    return -float(stdtrit(dof, alpha))


def binom_isf(alpha: float, n: int, p: float) -> float:
    """The smallest ``k`` with P(X > k) <= alpha for a binomial(n, p) count."""
    low, high = -1, n  # P(X > -1) = 1 > alpha; P(X > n) = 0 <= alpha
    while high - low > 1:
        mid = (low + high) // 2
        if bdtrc(mid, n, p) <= alpha:
            high = mid
        else:
            low = mid
    return float(high)


def betabinom_isf(alpha: float, n: int, a: float, b: float) -> float:
    """The smallest ``k`` with P(X > k) <= alpha for a beta-binomial(n, a, b) count."""
    k = np.arange(n + 1, dtype=np.float64)
    log_pmf = (
        gammaln(n + 1)
        - gammaln(k + 1)
        - gammaln(n - k + 1)
        + betaln(k + a, n - k + b)
        - betaln(a, b)
    )
    pmf = np.exp(log_pmf)
    # P(X > k) for k = 0..n, summed from the top so the tail keeps its precision
    above = np.concatenate((np.cumsum(pmf[::-1])[::-1][1:], [0.0]))
    return float(np.argmax(above <= alpha))


def betabinom_log_pmf(
    k: npt.NDArray[np.float64], n: float, a: float, b: float
) -> npt.NDArray[np.float64]:
    """``log P(X = k)`` for a beta-binomial(n, a, b) count, at each of ``k``."""
    log_pmf: npt.NDArray[np.float64] = (
        gammaln(n + 1.0)
        - gammaln(k + 1.0)
        - gammaln(n - k + 1.0)
        + betaln(k + a, n - k + b)
        - betaln(a, b)
    )
    return log_pmf

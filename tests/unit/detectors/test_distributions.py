"""The thresholds' quantiles from ``scipy.special`` against ``scipy.stats``.

The continuous ones and the binomial's are the same to the last bits over the
grid. The beta-binomial's differs only where ``scipy.stats`` computes its
tail as ``1 - cdf`` and loses it (alpha below ~1e-10); there the tail summed
from the top is checked against exact arithmetic instead.
"""

from __future__ import annotations

import itertools

import mpmath
import pytest
from scipy import stats

from detectors.distributions import (
    betabinom_isf,
    binom_isf,
    chi2_isf,
    normal_isf,
    student_t_isf,
)

ALPHAS = [0.5, 0.1, 1e-3, 3.7e-7, 1e-9, 1e-12]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_continuous_quantiles_are_scipy_stats(alpha: float) -> None:
    assert normal_isf(alpha) == pytest.approx(stats.norm.isf(alpha), rel=1e-12)
    for dof in (1, 2, 5, 30, 199):
        assert chi2_isf(alpha, dof) == pytest.approx(stats.chi2.isf(alpha, dof), rel=1e-12)
        assert student_t_isf(alpha, dof) == pytest.approx(stats.t.isf(alpha, dof), rel=1e-10)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_binomial_quantile_is_scipy_stats(alpha: float) -> None:
    for n, p in itertools.product((1, 10, 100, 500, 2000), (1e-4, 2 / 101, 0.01, 0.3, 0.9)):
        assert binom_isf(alpha, n, p) == stats.binom.isf(alpha, n, p), (n, p)


@pytest.mark.parametrize("alpha", [0.5, 0.1, 1e-3, 3.7e-7, 1e-9])
def test_beta_binomial_quantile_is_scipy_stats_where_scipy_keeps_its_tail(alpha: float) -> None:
    for n, (a, b) in itertools.product((10, 100, 500), ((1, 1), (1, 100), (5, 300), (50, 60))):
        assert betabinom_isf(alpha, n, a, b) == stats.betabinom.isf(alpha, n, a, b), (n, a, b)


def exact_tail(k: int, n: int, a: int, b: int) -> mpmath.mpf:
    """P(X > k) for a beta-binomial(n, a, b), in 40-digit arithmetic."""
    mpmath.mp.dps = 40
    pmf = [
        mpmath.binomial(n, j) * mpmath.beta(j + a, n - j + b) / mpmath.beta(a, b)
        for j in range(n + 1)
    ]
    return mpmath.fsum(pmf[k + 1 :])


@pytest.mark.parametrize(("alpha", "n", "a", "b"), [(1e-10, 1000, 501, 501), (1e-12, 500, 1, 5000)])
def test_beta_binomial_quantile_is_exact_deep_in_the_tail(
    alpha: float, n: int, a: int, b: int
) -> None:
    k = int(betabinom_isf(alpha, n, a, b))
    assert exact_tail(k, n, a, b) <= alpha < exact_tail(k - 1, n, a, b)

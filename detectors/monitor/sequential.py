"""An always-valid one-sided test: is a difference larger than a practical margin?

The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and
Walsh, "Always valid inference" (2017), as deployed in A/B testing: with an
estimate ``diff`` of a difference whose variance is ``variance`` (asymptotically
normal), and a normal mixture N(``margin``, ``tau``²) over the alternatives, the
likelihood ratio against the null boundary ``diff = margin`` is

    Λ = sqrt(V / (V + τ²)) · exp(τ² (diff - margin)² / (2 V (V + τ²)))

Under the null (the true difference at most ``margin``) Λ is, asymptotically,
a nonnegative supermartingale, so by Ville's inequality the chance that it ever
reaches ``1/alpha``, however often it is checked, is at most ``alpha``. The
test may therefore be looked at after every micro-batch and stop as soon as the
evidence allows, without the false alarms a repeated fixed-sample test would
pile up. The null is non-inferiority style: a candidate only "worse" by less
than ``margin`` (an equally good retrain always differs a little) is not a
regression, whatever the number of events.

>>> round(log_mixture_ratio(diff=0.03, variance=1e-5, margin=0.005, tau=0.02), 2)
28.63
>>> exceeds(diff=0.006, variance=1e-5, margin=0.005, tau=0.02, alpha=1e-3)
False
"""

from __future__ import annotations

import math


def log_mixture_ratio(diff: float, variance: float, margin: float, tau: float) -> float:
    """Log Λ of the mSPRT for ``diff`` above ``margin`` (0 when diff <= margin).

    One-sided: evidence only counts in the worse direction, so a difference below
    the margin never accumulates anything.
    """
    if diff <= margin or variance <= 0.0 or tau <= 0.0:
        return 0.0
    tau2 = tau * tau
    excess = diff - margin
    return 0.5 * math.log(variance / (variance + tau2)) + tau2 * excess * excess / (
        2.0 * variance * (variance + tau2)
    )


def exceeds(diff: float, variance: float, margin: float, tau: float, alpha: float) -> bool:
    """Whether the evidence that the difference exceeds ``margin`` is beyond ``alpha``."""
    return log_mixture_ratio(diff, variance, margin, tau) >= math.log(1.0 / alpha)

"""The false-alarm budget of a model monitor and how it becomes thresholds.

A stationary stream must open no incidents, even with hundreds of features and
several tests per feature. The budget is stated once per model version, as the
expected number of false detections per million prediction events
(:class:`FalseAlarmBudget`, default 0.01: one false detection per 100 million
events of one model version, about one every 116 days at 10 events/s, every 12
days at 100 events/s). It is split evenly (Bonferroni) over the tests the
monitor runs, so each test gets ``rate_per_test`` false alarms per event:

* a windowed test that checks every ``step`` events gets a per-check level
  ``alpha = rate * step`` and sets its threshold at the ``1 - alpha`` quantile of
  its statistic's null distribution (KS: the Kolmogorov tail bound; PSI,
  chi-square, Jensen-Shannon: chi-square; counts: binomial / beta-binomial);
* the CUSUM of :class:`detectors.drift.mean_shift.MeanShift` gets an in-control
  average run length of ``1 / rate`` events (Siegmund's approximation);
* the periodic domain classifier gets ``alpha = rate * every`` per run.

Bonferroni ignores that the tests are correlated (features, overlapping
windows), so the family-wise rate is at most the budget, usually well under
it; the hysteresis (``consecutive`` checks to raise) lowers it further.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fireline.errors import ConfigError


@dataclass(frozen=True, slots=True)
class FalseAlarmBudget:
    """Expected false detections per model version per million events, split over tests."""

    per_million_events: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 < self.per_million_events <= 1000.0:
            raise ConfigError(
                "per_million_events must be in (0, 1000] false detections per million "
                f"events; got {self.per_million_events}."
            )

    def rate_per_test(self, tests: int) -> float:
        """False alarms per event allowed to each of ``tests`` tests."""
        if tests < 1:
            raise ConfigError(f"a budget is split over at least one test; got {tests}.")
        return self.per_million_events / 1e6 / tests


def per_check_alpha(rate: float, every: int) -> float:
    """The false-alarm probability per check of a test run every ``every`` events."""
    return min(rate * every, 0.5)


def kolmogorov_c(alpha: float) -> float:
    """``c`` with P(sqrt(n_eff) * D > c) <= alpha under H0 (the DKW-Massart form)."""
    return math.sqrt(-0.5 * math.log(alpha / 2.0))

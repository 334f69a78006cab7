"""ModelVersions: each new version of a model judged against its baseline from its first events.

The first version a model serves is its **baseline**. Any other version is a
**candidate**, compared with the baseline after every micro-batch on the figures
both have: error rate (labels joined), the CBPE expected accuracy of a binary
classifier (from its scores, while labels lag; not used when the labels show the
scores are uncalibrated), the mean prediction, the positive rate or the class
mix, the median latency, and for numeric labels MAE and RMSE. Each figure is
an always-valid mSPRT (:mod:`detectors.monitor.sequential`) of "worse by more
than a practical margin", at ``false_alarm_rate`` split over the tests one
candidate can run (Bonferroni), so looking after every batch costs no extra
false alarms and an equally good retrain raises nothing, however long it serves.

**Deploy or canary.** A candidate is compared with what the baseline did before
the candidate's first event (a deploy: the baseline stopped); once the baseline
has served ``min_predictions`` more events alongside it (a traffic split, a
shadow), both are compared on that same time window, in both directions, and
whichever is worse is named. Half the budget goes to each mode.

**Decisions.** A candidate found worse raises one ``version_regression`` finding,
on the candidate, until it stops serving (``retire_after`` of the model's
predictions without it: the rollback happened) or an engineer accepts it
(:meth:`ModelVersions.accept`); both clear it. A candidate that serves
``accept_after`` predictions (and, if the baseline had labels, ``accept_labels``
outcomes) without a regression is **accepted**: it becomes the baseline, and a
``model_version_accepted`` record says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from detectors.monitor.comparison import ComparedFigure, ComparisonMode, VersionComparison
from detectors.monitor.records import (
    MODEL_VERSION_ACCEPTED,
    VERSION_REGRESSION,
    Finding,
    Prediction,
)
from detectors.monitor.sequential import exceeds
from detectors.monitor.version_stats import Mean, VersionStats
from detectors.params import DetectorParams, at_most

# Labels beyond this many sigmas from what the scores expect: the scores are uncalibrated.
CALIBRATION_Z = 4.0


class VersionComparisonParams(DetectorParams):
    """How model versions are compared (``detection.versions``)."""

    false_alarm_rate: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Chance that a version worse by exactly the margins is ever called a "
        "regression, per version compared (split over its tests); less for better ones.",
    )
    relative_margin: float = Field(
        default=0.25,
        ge=0,
        description="Practical margin on errors: a version is worse only if its error rate, "
        "expected error, MAE or RMSE exceeds the baseline's by more than this fraction.",
    )
    absolute_margin: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="The least margin on an error rate (a baseline with almost no errors).",
    )
    shift_margin: float = Field(
        default=0.1,
        ge=0,
        description="The mean prediction moving by more than this many baseline standard "
        "deviations counts.",
    )
    mix_margin: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="A class's share of the predictions (positive rate, class mix) moving "
        "by more than this counts.",
    )
    latency_margin: float = Field(
        default=0.25,
        ge=0,
        description="The median latency rising by more than this fraction counts.",
    )
    min_predictions: int = Field(
        default=200, ge=10, description="Predictions each version needs before a comparison."
    )
    min_labels: int = Field(
        default=100, ge=10, description="Labelled predictions each needs before label figures."
    )
    accept_after: int = Field(
        default=20_000,
        ge=1,
        description="Predictions a version serves without a regression before it is the "
        "new baseline.",
    )
    accept_labels: int = Field(
        default=500,
        ge=0,
        description="...and labelled predictions, when the baseline had labels.",
    )
    retire_after: int = Field(
        default=500,
        ge=1,
        description="A version not seen for this many of the model's predictions stopped "
        "serving (its regression clears: the rollback is done).",
    )
    max_classes: int = Field(
        default=20, ge=2, le=1000, description="Classes compared in a class mix (most frequent)."
    )

    rules = (at_most("min_predictions", "accept_after"),)


Kind = Literal["probability", "numeric", "classes", "none"]


@dataclass(slots=True)
class _Candidate:
    version: str
    start: float  # event time of its first prediction
    before: VersionStats  # the baseline's events before ``start``
    alpha: float  # per test and mode
    stats: VersionStats = field(default_factory=VersionStats)
    during: VersionStats = field(default_factory=VersionStats)  # the baseline's since
    last_seen: int = 0  # the model's prediction count when it was last seen
    regressed: VersionComparison | None = None
    baseline_regressed: VersionComparison | None = None  # canary: the baseline is worse


@dataclass(frozen=True, slots=True)
class _Batch:
    """One micro-batch's predictions, split by type, converted once."""

    scores: npt.NDArray[np.float64]
    classes: list[str]
    other: int
    latencies: npt.NDArray[np.float64]

    @classmethod
    def of(cls, batch: Sequence[Prediction]) -> _Batch:
        values = [p.prediction for p in batch]
        if all(type(v) is float for v in values):  # the common case, in C
            floats = np.array(values, dtype=np.float64)
            scores, classes = floats[np.isfinite(floats)], []
        else:
            numbers = [
                float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            floats = np.array(numbers, dtype=np.float64)
            scores = floats[np.isfinite(floats)]
            classes = [
                str(v).lower() if isinstance(v, bool) else v
                for v in values
                if isinstance(v, str | bool)
            ]
        latencies = np.array(
            [p.latency_ms for p in batch if p.latency_ms is not None], dtype=np.float64
        )
        other = len(values) - scores.size - len(classes)
        return cls(scores, classes, other, latencies)

    def feed(self, stats: VersionStats) -> None:
        stats.add_scores(self.scores)
        if self.classes:
            stats.add_classes(self.classes)
        if self.other:
            stats.add_other(self.other)
        stats.add_latencies(self.latencies)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Joined labels of one version: per outcome, whichever applies (NaN otherwise)."""

    errors: npt.NDArray[np.float64]  # classifier: 1 = wrong
    scores: npt.NDArray[np.float64]  # the probability the prediction had
    residuals: npt.NDArray[np.float64]  # regression: prediction - label
    predicted_at: npt.NDArray[np.float64]  # event time of each prediction
    at: float  # event time of the last label

    def feed(self, stats: VersionStats, rows: npt.NDArray[np.bool_] | None = None) -> None:
        """Add these outcomes (or the ``rows`` selected) to ``stats``."""
        errors, scores, residuals = self.errors, self.scores, self.residuals
        if rows is not None:
            errors, scores, residuals = errors[rows], scores[rows], residuals[rows]
        classified = np.isfinite(errors)
        if classified.any():
            stats.add_errors(errors[classified], scores[classified])
        regressed = np.isfinite(residuals)
        if regressed.any():
            stats.add_residuals(residuals[regressed])


class ModelVersions:
    """The baseline and the candidate versions of one model, and their comparison."""

    def __init__(self, model: str, params: VersionComparisonParams | None = None) -> None:
        self.model = model
        self.params = params or VersionComparisonParams.defaults()
        self.baseline_version: str | None = None
        self.baseline = VersionStats()
        self.candidates: dict[str, _Candidate] = {}
        self.seen = 0  # the model's predictions
        self.last_at = 0.0  # event time of the latest event
        self.last_version: str | None = None  # of the latest prediction

    def observe(self, version: str, batch: Sequence[Prediction]) -> list[Finding]:
        """Feed one version's micro-batch of predictions; what the comparison decided."""
        if not batch:
            return []
        self.seen += len(batch)
        self.last_version = version
        at = self.last_at = batch[-1].timestamp
        split = _Batch.of(batch)
        if self.baseline_version is None or (
            version not in self.candidates
            and version != self.baseline_version
            and self.baseline.predictions < self.params.min_predictions
        ):  # the first version, or one after a baseline too short to compare with
            self.baseline_version, self.baseline = version, VersionStats()
            self.candidates.clear()
        found: list[Finding] = []
        if version == self.baseline_version:
            split.feed(self.baseline)
            for candidate in self.candidates.values():
                split.feed(candidate.during)
            judged = list(self.candidates.values())
        else:
            new = self.candidates.get(version)
            if new is None:
                new = self.candidates[version] = self._candidate(version, batch[0].timestamp)
            split.feed(new.stats)
            new.last_seen = self.seen
            judged = [new]
        for candidate in judged:
            found += self._judge(candidate, at)
        found += self._retire(at)
        return found

    def observe_outcomes(self, version: str, outcomes: Outcomes) -> list[Finding]:
        """Feed one version's joined labels; what the comparison decided."""
        self.last_at = max(self.last_at, outcomes.at)
        if version == self.baseline_version:
            outcomes.feed(self.baseline)
            for candidate in self.candidates.values():
                early = outcomes.predicted_at < candidate.start
                outcomes.feed(candidate.before, early)
                outcomes.feed(candidate.during, ~early)
            judged = list(self.candidates.values())
        elif (own := self.candidates.get(version)) is not None:
            outcomes.feed(own.stats)
            judged = [own]
        else:
            return []
        found: list[Finding] = []
        for candidate in judged:
            found += self._judge(candidate, outcomes.at)
        return found

    def accept(self, version: str) -> list[Finding]:
        """Make ``version`` the baseline now (an engineer's call); nothing if not a candidate."""
        at = self.last_at
        candidate = self.candidates.get(version)
        if candidate is None:
            return []
        comparison = VersionComparison(
            self.baseline_version or "",
            version,
            self._figures(candidate, "deploy")[0],
            "deploy",
            accepted=True,
        )
        return self._promote(candidate, comparison, at)

    def performance(self) -> list[tuple[str, str, str, float]]:
        """(version, metric, source, value) of the baseline and every candidate.

        ``estimated`` (CBPE, binary classifiers' scores: accuracy, precision, recall,
        roc_auc) while the labels do not show the scores uncalibrated, then
        ``realised`` from the labels (accuracy, roc_auc; mae, rmse for numbers)
        once ``min_labels`` have joined, and ``calibrated`` 1 or 0 once they can tell.
        """
        rows: list[tuple[str, str, str, float]] = []
        served = [(c.version, c.stats) for c in self.candidates.values()]
        if self.baseline_version is not None:
            served.insert(0, (self.baseline_version, self.baseline))
        for version, stats in served:
            rows += [
                (version, metric, source, value)
                for metric, source, value in _performance(self.params, stats)
            ]
        return rows

    # -- decisions -------------------------------------------------------------------

    def _candidate(self, version: str, start: float) -> _Candidate:
        kind = _kind(self.baseline)
        tests = {"probability": 7, "numeric": 5, "none": 1}.get(kind)
        if tests is None:  # classes: the error rate, the latency, two per class
            tests = 2 + 2 * min(max(len(self.baseline.classes), 2), self.params.max_classes)
        # Half the budget per mode; a canary also tests the other direction.
        alpha = self.params.false_alarm_rate / (2 * tests)
        return _Candidate(version, start, self.baseline.copy(), alpha, last_seen=self.seen)

    def _judge(self, candidate: _Candidate, at: float) -> list[Finding]:
        p = self.params
        if candidate.regressed is not None:
            return []
        canary = candidate.during.predictions >= p.min_predictions
        mode: ComparisonMode = "canary" if canary else "deploy"
        base = candidate.during if canary else candidate.before
        if base.predictions < p.min_predictions or candidate.stats.predictions < p.min_predictions:
            return []
        alpha = candidate.alpha / 2 if canary else candidate.alpha  # both directions
        figures, worse = _compare(p, alpha, base, candidate.stats)
        found: list[Finding] = []
        baseline = self.baseline_version or ""
        if worse:
            comparison = VersionComparison(baseline, candidate.version, figures, mode, False)
            candidate.regressed = comparison
            found.append(self._finding(candidate.version, baseline, comparison, at))
            return found
        if canary and candidate.baseline_regressed is None:
            reverse, base_worse = _compare(p, candidate.alpha / 2, candidate.stats, base)
            if base_worse:
                comparison = VersionComparison(
                    candidate.version, baseline, reverse, mode, accepted=False
                )
                candidate.baseline_regressed = comparison
                found.append(self._finding(baseline, candidate.version, comparison, at))
        if self._acceptable(candidate):
            comparison = VersionComparison(baseline, candidate.version, figures, mode, True)
            found += self._promote(candidate, comparison, at)
        return found

    def _figures(
        self, candidate: _Candidate, mode: ComparisonMode
    ) -> tuple[tuple[ComparedFigure, ...], bool]:
        base = candidate.during if mode == "canary" else candidate.before
        return _compare(self.params, candidate.alpha, base, candidate.stats)

    def _acceptable(self, candidate: _Candidate) -> bool:
        p = self.params
        stats = candidate.stats
        if stats.predictions < p.accept_after:
            return False
        had_labels = candidate.before.labelled + candidate.before.residuals > 0
        return not had_labels or stats.labelled + stats.residuals >= p.accept_labels

    def _promote(
        self, candidate: _Candidate, comparison: VersionComparison, at: float
    ) -> list[Finding]:
        found = [
            Finding(
                at,
                self.model,
                candidate.version,
                MODEL_VERSION_ACCEPTED,
                None,
                0.0,
                comparison.describe(self.model),
                previous_version=self.baseline_version,
                comparison=comparison,
            )
        ]
        for other in self.candidates.values():  # every regression this baseline had clears
            for worse in (other.regressed, other.baseline_regressed):
                if worse is not None:
                    found.append(self._cleared(worse, at))
        del self.candidates[candidate.version]
        self.baseline_version = candidate.version
        self.baseline = candidate.stats
        for other in self.candidates.values():  # compared with the new baseline from now
            other.before = self.baseline.copy()
            other.during = VersionStats()
            other.regressed = other.baseline_regressed = None
        return found

    def _retire(self, at: float) -> list[Finding]:
        gone = [
            c
            for c in self.candidates.values()
            if self.seen - c.last_seen > self.params.retire_after
        ]
        found: list[Finding] = []
        for candidate in gone:
            del self.candidates[candidate.version]
            for worse in (candidate.regressed, candidate.baseline_regressed):
                if worse is not None:
                    found.append(self._cleared(worse, at))
        return found

    def _finding(
        self, worse: str, better: str, comparison: VersionComparison, at: float
    ) -> Finding:
        named = next(iter(comparison.worse), None)
        return Finding(
            at,
            self.model,
            worse,
            VERSION_REGRESSION,
            None,
            1.0,
            comparison.describe(self.model),
            previous_version=better,
            observed=named.candidate if named else None,
            baseline=named.baseline if named else None,
            comparison=comparison,
        )

    def _cleared(self, comparison: VersionComparison, at: float) -> Finding:
        finding = self._finding(
            comparison.candidate_version, comparison.baseline_version, comparison, at
        )
        return Finding(
            at,
            self.model,
            finding.model_version,
            VERSION_REGRESSION,
            None,
            0.0,
            f"{self.model} v{finding.model_version} no longer compared with "
            f"v{finding.previous_version} (rolled back, retired or accepted)",
            cleared=True,
            previous_version=finding.previous_version,
            comparison=comparison,
        )


def _performance(
    p: VersionComparisonParams, stats: VersionStats
) -> Iterator[tuple[str, str, float]]:
    if stats.is_probability:
        labelled = stats.scored >= p.min_labels
        if labelled:
            yield "calibrated", "realised", float(_trusted(p, stats))
        if _trusted(p, stats):
            precision, recall = stats.expected_precision_recall()
            yield "accuracy", "estimated", stats.expected_accuracy().mean
            yield "precision", "estimated", precision
            yield "recall", "estimated", recall
            yield "roc_auc", "estimated", stats.expected_roc_auc()
        if labelled:
            yield "roc_auc", "realised", stats.realised_roc_auc()
    if stats.labelled >= p.min_labels:
        yield "accuracy", "realised", 1.0 - stats.error_rate().mean
    if stats.residuals >= p.min_labels:
        yield "mae", "realised", stats.abs_error().mean
        yield "rmse", "realised", math.sqrt(stats.squared_error().mean)


def _kind(stats: VersionStats) -> Kind:
    if stats.classes and stats.classes.total() * 2 >= stats.predictions:
        return "classes"
    if stats.numeric:
        return "probability" if stats.is_probability else "numeric"
    return "none"


# -- the figures ---------------------------------------------------------------------


def _compare(
    p: VersionComparisonParams, alpha: float, base: VersionStats, cand: VersionStats
) -> tuple[tuple[ComparedFigure, ...], bool]:
    """Every figure both have, each with the test's verdict; whether any is worse."""
    figures = tuple(_figures(p, alpha, base, cand))
    return figures, any(f.worse for f in figures)


def _figures(
    p: VersionComparisonParams, alpha: float, base: VersionStats, cand: VersionStats
) -> Iterator[ComparedFigure]:
    kind = _kind(base)
    if base.labelled >= p.min_labels and cand.labelled >= p.min_labels:
        yield _error_rate(p, alpha, base.error_rate(), cand.error_rate())
    if base.residuals >= p.min_labels and cand.residuals >= p.min_labels:
        yield from _regression_errors(p, alpha, base, cand)
    if kind == "probability" and cand.is_probability:
        if _estimate_holds(p, base, cand):
            yield _expected_accuracy(p, alpha, base.expected_accuracy(), cand.expected_accuracy())
        yield _shift(p, alpha, "mean_score", base.score(), cand.score())
        yield _share(p, alpha, "positive_rate", base.positive_rate(), cand.positive_rate())
    elif kind == "numeric" and cand.numeric >= p.min_predictions:
        yield _shift(p, alpha, "mean_score", base.score(), cand.score())
    elif kind == "classes":
        yield _class_mix(p, alpha, base, cand)
    if base.latency_count() >= p.min_predictions and cand.latency_count() >= p.min_predictions:
        yield _latency(p, alpha, base, cand)


def _trusted(p: VersionComparisonParams, stats: VersionStats) -> bool:
    """Scores are trusted as probabilities until the labels show they are not."""
    return stats.scored < p.min_labels or abs(stats.calibration_z()) < CALIBRATION_Z


def _estimate_holds(p: VersionComparisonParams, base: VersionStats, cand: VersionStats) -> bool:
    """Whether "the candidate's expected accuracy is lower" may be concluded.

    Miscalibration only matters in one direction each: a candidate more often
    wrong than its scores claim is worse still than its estimate (the conclusion
    holds), a baseline less often wrong than claimed better still. What the labels
    must not show is an underconfident candidate or an overconfident baseline.
    """

    def z(stats: VersionStats) -> float:
        return stats.calibration_z() if stats.scored >= p.min_labels else 0.0

    return z(cand) > -CALIBRATION_Z and z(base) < CALIBRATION_Z


def _rate_variance(rate: float, n: int) -> float:
    rate = min(max(rate, 0.5 / n), 1.0 - 0.5 / n)  # never zero: no certainty from a few events
    return rate * (1.0 - rate) / n


def _error_rate(p: VersionComparisonParams, alpha: float, b: Mean, c: Mean) -> ComparedFigure:
    margin = max(p.relative_margin * b.mean, p.absolute_margin)
    # The candidate's variance at least at the null boundary: a lucky start proves nothing.
    variance = _rate_variance(max(c.mean, b.mean + margin), c.n) + _rate_variance(b.mean, b.n)
    worse = exceeds(c.mean - b.mean, variance, margin, max(b.mean, margin), alpha)
    return ComparedFigure("error_rate", b.mean, c.mean, b.n, c.n, worse)


def _expected_accuracy(
    p: VersionComparisonParams, alpha: float, b: Mean, c: Mean
) -> ComparedFigure:
    error = 1.0 - b.mean
    margin = max(p.relative_margin * error, p.absolute_margin)
    variance = c.variance / c.n + b.variance / b.n
    worse = exceeds(b.mean - c.mean, variance, margin, max(error, margin), alpha)
    return ComparedFigure("estimated_accuracy", b.mean, c.mean, b.n, c.n, worse, estimated=True)


def _shift(
    p: VersionComparisonParams, alpha: float, metric: str, b: Mean, c: Mean
) -> ComparedFigure:
    """Two-sided: a move either way by more than ``shift_margin`` baseline sds."""
    sd = math.sqrt(b.variance)
    margin = max(p.shift_margin * sd, 1e-12)
    variance = c.variance / c.n + b.variance / b.n
    worse = exceeds(abs(c.mean - b.mean), variance, margin, max(3.0 * margin, 0.25 * sd), alpha)
    return ComparedFigure(metric, b.mean, c.mean, b.n, c.n, worse)


def _share(
    p: VersionComparisonParams, alpha: float, metric: str, b: Mean, c: Mean, detail: str = ""
) -> ComparedFigure:
    """Two-sided: a share moving by more than ``mix_margin``."""
    margin = p.mix_margin
    variance = _rate_variance(c.mean, c.n) + _rate_variance(b.mean, b.n)
    worse = exceeds(abs(c.mean - b.mean), variance, margin, max(3.0 * margin, 0.05), alpha)
    return ComparedFigure(metric, b.mean, c.mean, b.n, c.n, worse, detail=detail)


def _class_mix(
    p: VersionComparisonParams, alpha: float, base: VersionStats, cand: VersionStats
) -> ComparedFigure:
    names = [name for name, _ in base.classes.most_common(p.max_classes)]
    names += [n for n, _ in cand.classes.most_common(p.max_classes) if n not in base.classes][
        : max(p.max_classes - len(names), 0)
    ]
    shares = [
        _share(p, alpha, "class_mix", base.class_share(n), cand.class_share(n), n) for n in names
    ]
    worst = max(shares, key=lambda f: (f.worse, abs(f.candidate - f.baseline)))
    return worst


def _latency(
    p: VersionComparisonParams, alpha: float, base: VersionStats, cand: VersionStats
) -> ComparedFigure:
    """The share of the candidate's latencies above the baseline's median x (1 + margin).

    Under the null (the median rose by at most the margin) that share is at most
    one half: a test of a rate, whatever the latencies' distribution.
    """
    median = base.latency_median()
    above = cand.share_above(median * (1.0 + p.latency_margin))
    worse = exceeds(above.mean, 0.25 / above.n, 0.5, 0.1, alpha)
    return ComparedFigure(
        "latency_p50_ms",
        median,
        cand.latency_median(),
        base.latency_count(),
        cand.latency_count(),
        worse,
    )


def _regression_errors(
    p: VersionComparisonParams, alpha: float, base: VersionStats, cand: VersionStats
) -> Iterator[ComparedFigure]:
    b, c = base.abs_error(), cand.abs_error()
    margin = max(p.relative_margin * b.mean, 1e-12)
    worse = exceeds(c.mean - b.mean, c.variance / c.n + b.variance / b.n, margin, margin, alpha)
    yield ComparedFigure("mae", b.mean, c.mean, b.n, c.n, worse)
    b, c = base.squared_error(), cand.squared_error()
    margin = max(((1.0 + p.relative_margin) ** 2 - 1.0) * b.mean, 1e-12)
    worse = exceeds(c.mean - b.mean, c.variance / c.n + b.variance / b.n, margin, margin, alpha)
    yield ComparedFigure("rmse", math.sqrt(b.mean), math.sqrt(c.mean), b.n, c.n, worse)

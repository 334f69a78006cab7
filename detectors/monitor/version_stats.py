"""VersionStats: running sums of one model version's predictions and outcomes.

Fed per micro-batch with NumPy (a handful of vector operations per batch,
nothing per event in Python), small and picklable: sums, a 50-bin score
histogram, a log-spaced latency histogram, class counts. Every figure the
version comparison tests, and the CBPE estimate of a binary classifier's
performance, is read from them:

* scores: mean and variance of the prediction; for probabilities in [0, 1] the
  positive rate (score >= 0.5) and the *expected* accuracy, precision, recall
  and ROC AUC if the scores are calibrated (confidence-based performance
  estimation, CBPE: an event of score ``s`` is right with probability
  ``max(s, 1 - s)``);
* class predictions: the class mix;
* latency: the median, and the share above a given latency;
* outcomes (labels joined): the error rate, the realised ROC AUC, the expected
  errors of the labelled events (the calibration check), and for numeric
  labels the absolute and squared errors (MAE, RMSE).
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SCORE_BINS = 50
# Latency bins: 10 µs to 1,000 s, 4.7% apart (log-spaced): a median to within 2.5%.
LATENCY_EDGES = np.geomspace(1e-2, 1e6, 401)


@dataclass(frozen=True, slots=True)
class Mean:
    """A sample mean with its variance estimate, on ``n`` events."""

    n: int
    mean: float
    variance: float  # of one event (the mean's variance is variance / n)


def _mean(n: int, total: float, squares: float) -> Mean:
    if n == 0:
        return Mean(0, 0.0, 0.0)
    mean = total / n
    return Mean(n, mean, max(squares / n - mean * mean, 0.0))


@dataclass(slots=True)
class VersionStats:
    """Running sums of one version's events (see the module docstring)."""

    predictions: int = 0
    numeric: int = 0  # predictions that were numbers
    score_sum: float = 0.0
    score_squares: float = 0.0
    probabilities: int = 0  # numeric predictions outside [0, 1] make this -1: not a classifier
    positives: int = 0
    confidence_sum: float = 0.0  # sum of max(s, 1 - s)
    confidence_squares: float = 0.0
    score_hist: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(SCORE_BINS))
    expected_positive_hist: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(SCORE_BINS)
    )
    classes: Counter[str] = field(default_factory=Counter)
    latencies: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(LATENCY_EDGES.size + 1)
    )
    # outcomes
    labelled: int = 0
    errors: float = 0.0
    expected_errors: float = 0.0  # sum over labelled events of min(s, 1 - s)
    expected_error_variance: float = 0.0  # sum of p (1 - p) of those
    scored: int = 0  # labelled events with a probability (the calibration check)
    positive_label_hist: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(SCORE_BINS)
    )
    negative_label_hist: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(SCORE_BINS)
    )
    residuals: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    fourth_power_sum: float = 0.0

    def copy(self) -> VersionStats:
        """An independent copy (a snapshot of the baseline when a candidate starts)."""
        return copy.deepcopy(self)

    # -- feeding ---------------------------------------------------------------------

    def add_scores(self, scores: npt.NDArray[np.float64]) -> None:
        """Numeric predictions of a micro-batch (finite values only)."""
        n = int(scores.size)
        self.predictions += n
        if n == 0:
            return
        self.numeric += n
        self.score_sum += float(scores.sum())
        self.score_squares += float(np.dot(scores, scores))
        if self.probabilities < 0:
            return
        if scores.min() < 0.0 or scores.max() > 1.0:
            self.probabilities = -1  # a regression or a raw score: no CBPE
            return
        self.probabilities += n
        self.positives += int(np.count_nonzero(scores >= 0.5))
        confidence = np.maximum(scores, 1.0 - scores)
        self.confidence_sum += float(confidence.sum())
        self.confidence_squares += float(np.dot(confidence, confidence))
        bins = _score_bins(scores)
        self.score_hist += np.bincount(bins, minlength=SCORE_BINS)
        self.expected_positive_hist += np.bincount(bins, weights=scores, minlength=SCORE_BINS)

    def add_classes(self, classes: Sequence[str]) -> None:
        """Class (string) predictions of a micro-batch."""
        self.predictions += len(classes)
        self.classes.update(classes)

    def add_other(self, n: int) -> None:
        """Predictions that are neither (objects, nulls): counted only."""
        self.predictions += n

    def add_latencies(self, latencies: npt.NDArray[np.float64]) -> None:
        """Latencies in ms of a micro-batch."""
        if latencies.size:
            self.latencies += np.bincount(
                np.searchsorted(LATENCY_EDGES, latencies), minlength=self.latencies.size
            )

    def add_errors(self, errors: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]) -> None:
        """Classifier outcomes: 1 = wrong; ``scores`` the probability each had (NaN: none)."""
        self.labelled += int(errors.size)
        self.errors += float(errors.sum())
        known = np.isfinite(scores)
        if not known.any():
            return
        s, wrong = scores[known], errors[known]
        p = np.minimum(s, 1.0 - s)
        self.scored += int(s.size)
        self.expected_errors += float(p.sum())
        self.expected_error_variance += float(np.dot(p, 1.0 - p))
        positive = (s >= 0.5) != (wrong > 0.5)  # the label, from the score and the error
        bins = _score_bins(s)
        self.positive_label_hist += np.bincount(bins[positive], minlength=SCORE_BINS)
        self.negative_label_hist += np.bincount(bins[~positive], minlength=SCORE_BINS)

    def add_residuals(self, residuals: npt.NDArray[np.float64]) -> None:
        """Regression outcomes: prediction minus label."""
        squared = residuals * residuals
        self.residuals += int(residuals.size)
        self.abs_error_sum += float(np.abs(residuals).sum())
        self.squared_error_sum += float(squared.sum())
        self.fourth_power_sum += float(np.dot(squared, squared))

    # -- figures ---------------------------------------------------------------------

    @property
    def is_probability(self) -> bool:
        """Every numeric prediction so far was in [0, 1] (a binary classifier's score)."""
        return self.probabilities > 0

    def score(self) -> Mean:
        """The mean numeric prediction."""
        return _mean(self.numeric, self.score_sum, self.score_squares)

    def positive_rate(self) -> Mean:
        """The share of scores >= 0.5."""
        n = max(self.probabilities, 0)
        rate = self.positives / n if n else 0.0
        return Mean(n, rate, rate * (1.0 - rate))

    def error_rate(self) -> Mean:
        """The realised error rate of the labelled predictions."""
        rate = self.errors / self.labelled if self.labelled else 0.0
        return Mean(self.labelled, rate, rate * (1.0 - rate))

    def expected_accuracy(self) -> Mean:
        """CBPE: the accuracy the scores promise if they are calibrated."""
        return _mean(max(self.probabilities, 0), self.confidence_sum, self.confidence_squares)

    def expected_precision_recall(self) -> tuple[float, float]:
        """CBPE precision and recall at threshold 0.5."""
        upper = slice(SCORE_BINS // 2, None)
        true_pos = float(self.expected_positive_hist[upper].sum())
        predicted_pos = float(self.score_hist[upper].sum())
        all_pos = float(self.expected_positive_hist.sum())
        precision = true_pos / predicted_pos if predicted_pos else math.nan
        recall = true_pos / all_pos if all_pos else math.nan
        return precision, recall

    def expected_roc_auc(self) -> float:
        """CBPE ROC AUC: each bin holds sum(s) expected positives, sum(1 - s) negatives."""
        positives = self.expected_positive_hist
        return _auc(positives, self.score_hist - positives)

    def realised_roc_auc(self) -> float:
        """ROC AUC of the labelled predictions (to the score histogram's resolution)."""
        return _auc(self.positive_label_hist, self.negative_label_hist)

    def calibration_z(self) -> float:
        """(realised - expected errors) / sd of the labelled, scored events; 0 without any."""
        if self.scored == 0 or self.expected_error_variance <= 0.0:
            return 0.0
        realised = float(
            self.scored
            - self.positive_label_hist[SCORE_BINS // 2 :].sum()
            - self.negative_label_hist[: SCORE_BINS // 2].sum()
        )
        return (realised - self.expected_errors) / math.sqrt(self.expected_error_variance)

    def class_share(self, name: str) -> Mean:
        """The share of class predictions that were ``name``."""
        n = sum(self.classes.values())
        share = self.classes.get(name, 0) / n if n else 0.0
        return Mean(n, share, share * (1.0 - share))

    def latency_count(self) -> int:
        """Predictions with a latency."""
        return int(self.latencies.sum())

    def latency_median(self) -> float:
        """The median latency in ms (to the bins' resolution; NaN without latencies)."""
        total = self.latencies.sum()
        if total == 0:
            return math.nan
        k = int(np.searchsorted(np.cumsum(self.latencies), total / 2.0))
        low = LATENCY_EDGES[max(k - 1, 0)]
        high = LATENCY_EDGES[min(k, LATENCY_EDGES.size - 1)]
        return float(math.sqrt(low * high))

    def share_above(self, latency_ms: float) -> Mean:
        """The share of latencies above ``latency_ms`` (bins wholly above it)."""
        n = self.latency_count()
        k = int(np.searchsorted(LATENCY_EDGES, latency_ms, side="right"))
        share = float(self.latencies[k + 1 :].sum()) / n if n else 0.0
        return Mean(n, share, share * (1.0 - share))

    def abs_error(self) -> Mean:
        """Mean absolute error of the labelled numeric predictions."""
        return _mean(self.residuals, self.abs_error_sum, self.squared_error_sum)

    def squared_error(self) -> Mean:
        """Mean squared error (its square root is the RMSE)."""
        return _mean(self.residuals, self.squared_error_sum, self.fourth_power_sum)


def _score_bins(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    return np.minimum((scores * SCORE_BINS).astype(np.intp), SCORE_BINS - 1)


def _auc(positives: npt.NDArray[np.float64], negatives: npt.NDArray[np.float64]) -> float:
    """P(a positive scores above a negative), ties (same bin) counted half."""
    p, q = float(positives.sum()), float(negatives.sum())
    if p <= 0.0 or q <= 0.0:
        return math.nan
    below = np.concatenate(([0.0], np.cumsum(negatives)[:-1]))
    return float((positives * (below + 0.5 * negatives)).sum() / (p * q))

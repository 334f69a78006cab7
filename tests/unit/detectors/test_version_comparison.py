"""Version comparison: the records, the sequential test and the monitor's decisions."""

import numpy as np

from detectors.monitor.comparison import ComparedFigure, VersionComparison
from detectors.monitor.records import Finding, Prediction
from detectors.monitor.sequential import exceeds, log_mixture_ratio
from detectors.monitor.versions import ModelVersions, Outcomes, VersionComparisonParams


def test_a_regression_reads_as_the_issue_shows_it():
    comparison = VersionComparison(
        "7",
        "8",
        (
            ComparedFigure("error_rate", 0.012, 0.036, 9_000, 1_800, worse=True),
            ComparedFigure("mean_score", 0.63, 0.58, 10_000, 2_000, worse=True),
            ComparedFigure("latency_p50_ms", 20.0, 20.5, 10_000, 2_000, worse=False),
        ),
        mode="deploy",
        accepted=False,
    )
    assert comparison.describe("fraud") == (
        "fraud v8 is worse than v7: error rate 3.6% vs 1.2% (1,800 labelled), "
        "mean score 0.58 vs 0.63 (2,000 predictions)"
    )


def test_an_estimated_figure_says_so_and_a_canary_names_its_window():
    figure = ComparedFigure("estimated_accuracy", 0.99, 0.97, 5_000, 3_000, True, estimated=True)
    comparison = VersionComparison("1", "2", (figure,), mode="canary", accepted=False)
    assert comparison.describe("m") == (
        "m v2 is worse than v1 (canary: same time window): "
        "estimated accuracy 97.0% vs 99.0% (3,000 predictions, estimated)"
    )


# -- the sequential test -------------------------------------------------------------


def test_evidence_below_the_margin_never_counts():
    assert log_mixture_ratio(diff=0.01, variance=1e-9, margin=0.01, tau=0.01) == 0.0
    assert log_mixture_ratio(diff=-5.0, variance=1e-9, margin=0.0, tau=0.01) == 0.0


def test_the_msprt_keeps_its_false_alarm_rate_however_often_it_is_looked_at():
    """Paths at the null boundary, checked after every batch: rejections stay under alpha."""
    rng = np.random.default_rng(5)
    alpha, paths, looks, batch = 0.05, 2000, 100, 20
    steps = rng.normal(0.1, 1.0, size=(paths, looks * batch))  # true difference = margin
    sums = np.cumsum(steps, axis=1)[:, batch - 1 :: batch]
    n = np.arange(1, looks + 1) * batch
    rejected = 0
    for path in sums:
        if any(exceeds(s / k, 1.0 / k, 0.1, 0.3, alpha) for s, k in zip(path, n, strict=True)):
            rejected += 1
    assert rejected / paths <= alpha
    # ...while a fixed-sample z-test looked at 100 times would reject far more often.
    z = (sums / n - 0.1) * np.sqrt(n)
    assert (z > 1.645).any(axis=1).mean() > 3 * alpha


# -- the monitor's decisions -----------------------------------------------------------


def predictions(
    version: str,
    start: int,
    n: int,
    scores: np.ndarray,
    latency: float | np.ndarray | None = 20.0,
) -> list[Prediction]:
    latencies = np.broadcast_to(np.asarray(latency if latency is not None else np.nan), (n,))
    return [
        Prediction(
            float(start + i),
            "fraud",
            version,
            f"p{start + i}",
            {},
            float(scores[i]) if not isinstance(scores[i], str) else scores[i],
            None if latency is None else float(latencies[i]),
        )
        for i in range(n)
    ]


def classifier(rng: np.random.Generator, n: int, error: float, softness: float = 0.0):
    """Scores and labels of a classifier wrong ``error`` of the time (calibrated if softness 0)."""
    truth = rng.random(n) < 0.2
    wrong = rng.random(n) < error
    predicted = truth != wrong
    confidence = 1.0 - rng.uniform(0.0, 0.02 + softness, n)
    scores = np.where(predicted, confidence, 1.0 - confidence)
    return scores, truth.astype(int)


def feed(
    versions: ModelVersions,
    version: str,
    start: int,
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    latency: float | np.ndarray | None = 20.0,
    batch: int = 250,
) -> list[Finding]:
    """Predictions in batches, each batch's labels right after it."""
    found: list[Finding] = []
    for s in range(0, scores.size, batch):
        chunk = predictions(
            version,
            start + s,
            min(batch, scores.size - s),
            scores[s : s + batch],
            latency if np.ndim(latency) == 0 else latency[s : s + batch],  # type: ignore[index]
        )
        found += versions.observe(version, chunk)
        if labels is not None:
            y = labels[s : s + batch]
            sc = scores[s : s + batch].astype(float)
            errors = ((sc >= 0.5) != (y == 1)).astype(float)
            times = np.arange(start + s, start + s + y.size, dtype=float)
            nan = np.full(y.size, np.nan)
            found += versions.observe_outcomes(
                version, Outcomes(errors, sc, nan, times, float(start + s + y.size))
            )
    return found


PARAMS = VersionComparisonParams(accept_after=20_000)


def test_a_worse_version_is_caught_from_its_labels_and_named_with_both_figures():
    rng = np.random.default_rng(1)
    versions = ModelVersions("fraud", PARAMS)
    assert feed(versions, "7", 0, *classifier(rng, 10_000, 0.01)) == []
    found = feed(versions, "8", 10_000, *classifier(rng, 4_000, 0.05))
    assert [(f.kind, f.model_version, f.previous_version) for f in found] == [
        ("version_regression", "8", "7")
    ]
    regression = found[0]
    assert regression.timestamp < 10_000 + 2_000
    comparison = regression.comparison
    assert comparison is not None and comparison.mode == "deploy" and not comparison.accepted
    error = next(f for f in comparison.figures if f.metric == "error_rate")
    assert error.worse and error.baseline < 0.015 and error.candidate > 0.03
    assert regression.message.startswith("fraud v8 is worse than v7: ")
    assert "error rate" in regression.message


def test_an_equally_good_version_raises_nothing_and_is_accepted_as_the_baseline():
    rng = np.random.default_rng(2)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, *classifier(rng, 10_000, 0.01))
    found = feed(versions, "8", 10_000, *classifier(rng, 21_000, 0.01))
    assert [(f.kind, f.model_version, f.previous_version) for f in found] == [
        ("model_version_accepted", "8", "7")
    ]
    assert found[0].comparison is not None and found[0].comparison.accepted
    assert found[0].timestamp == 10_000 + 20_000 - 1
    assert versions.baseline_version == "8" and versions.candidates == {}


def test_without_labels_less_confident_scores_are_caught_by_the_estimated_accuracy():
    rng = np.random.default_rng(3)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, classifier(rng, 10_000, 0.01)[0])
    found = feed(versions, "8", 10_000, classifier(rng, 3_000, 0.01, softness=0.3)[0])
    assert [f.kind for f in found] == ["version_regression"]
    comparison = found[0].comparison
    assert comparison is not None
    worse = {f.metric for f in comparison.worse}
    assert "estimated_accuracy" in worse
    assert all(f.estimated for f in comparison.figures if f.metric.startswith("estimated"))


def test_scores_the_labels_show_uncalibrated_are_not_trusted_as_estimates():
    rng = np.random.default_rng(4)
    versions = ModelVersions("fraud", PARAMS)
    scores, labels = classifier(rng, 10_000, 0.08)  # 8% wrong while claiming 99% confidence
    feed(versions, "7", 0, scores, labels)
    assert versions.baseline.calibration_z() > 4
    assert feed(versions, "8", 10_000, *classifier(rng, 3_000, 0.08, softness=0.3)) == []
    accepted = versions.accept("8")[0].comparison  # shows every figure compared
    assert accepted is not None
    assert {f.metric for f in accepted.figures} == {
        "error_rate",
        "mean_score",
        "positive_rate",
        "latency_p50_ms",
    }


def test_calibrated_scores_are_compared_on_their_estimated_accuracy():
    rng = np.random.default_rng(4)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, *classifier(rng, 10_000, 0.01))
    feed(versions, "8", 10_000, *classifier(rng, 3_000, 0.01))
    accepted = versions.accept("8")[0].comparison
    assert accepted is not None
    assert "estimated_accuracy" in {f.metric for f in accepted.figures}


def test_a_slower_version_is_caught_on_its_median_latency():
    rng = np.random.default_rng(5)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, classifier(rng, 5_000, 0.01)[0], latency=rng.gamma(9, 2, 5_000))
    found = feed(
        versions, "8", 5_000, classifier(rng, 3_000, 0.01)[0], latency=rng.gamma(9, 3, 3_000)
    )
    assert [f.kind for f in found] == ["version_regression"]
    assert {f.metric for f in found[0].comparison.worse} == {"latency_p50_ms"}


def test_a_canary_names_the_worse_version_even_when_it_is_the_old_one():
    rng = np.random.default_rng(6)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, *classifier(rng, 10_000, 0.05))
    found: list[Finding] = []
    for start in range(10_000, 16_000, 500):  # both serve, interleaved batches
        found += feed(versions, "7", start, *classifier(rng, 250, 0.05))
        found += feed(versions, "8", start + 250, *classifier(rng, 250, 0.01))
    regressions = [f for f in found if f.kind == "version_regression"]
    assert [(f.model_version, f.previous_version) for f in regressions] == [("7", "8")]
    assert regressions[0].comparison.mode == "canary"
    assert regressions[0].message.startswith("fraud v7 is worse than v8 (canary: same time window)")


def test_a_rollback_clears_the_regression_once_the_worse_version_stopped_serving():
    rng = np.random.default_rng(7)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, *classifier(rng, 10_000, 0.01))
    found = feed(versions, "8", 10_000, *classifier(rng, 3_000, 0.08))
    assert [f.kind for f in found] == ["version_regression"]
    found = feed(versions, "7", 13_000, *classifier(rng, 1_000, 0.01))
    assert [(f.kind, f.model_version, f.cleared) for f in found] == [
        ("version_regression", "8", True)
    ]
    assert versions.baseline_version == "7" and versions.candidates == {}


def test_an_engineer_accepting_a_regressed_version_clears_it_and_makes_it_the_baseline():
    rng = np.random.default_rng(8)
    versions = ModelVersions("fraud", PARAMS)
    feed(versions, "7", 0, *classifier(rng, 10_000, 0.01))
    feed(versions, "8", 10_000, *classifier(rng, 3_000, 0.08))
    found = versions.accept("8")
    assert [(f.kind, f.model_version, f.cleared) for f in found] == [
        ("model_version_accepted", "8", False),
        ("version_regression", "8", True),
    ]
    assert versions.baseline_version == "8"
    assert versions.accept("8") == [] and versions.accept("9") == []


def test_a_regression_model_is_compared_on_mae_and_rmse():
    rng = np.random.default_rng(9)
    versions = ModelVersions("price", PARAMS)

    def regression(version: str, start: int, n: int, noise: float) -> list[Finding]:
        truth = rng.normal(100.0, 20.0, n)
        predicted = truth + rng.normal(0.0, noise, n)
        found = versions.observe(version, predictions(version, start, n, predicted))
        nan = np.full(n, np.nan)
        times = np.arange(start, start + n, dtype=float)
        outcomes = Outcomes(nan, nan, predicted - truth, times, float(start + n))
        return found + versions.observe_outcomes(version, outcomes)

    for start in range(0, 5_000, 500):
        assert regression("1", start, 500, noise=5.0) == []
    found: list[Finding] = []
    for start in range(5_000, 8_000, 500):
        found += regression("2", start, 500, noise=8.0)
    assert [f.kind for f in found] == ["version_regression"]
    assert {f.metric for f in found[0].comparison.worse} >= {"mae", "rmse"}


def test_a_multiclass_model_is_compared_on_its_class_mix():
    rng = np.random.default_rng(10)
    versions = ModelVersions("intent", PARAMS)
    classes = np.array(["buy", "browse", "leave"])
    old = classes[rng.choice(3, 5_000, p=[0.2, 0.5, 0.3])]
    feed(versions, "1", 0, old)
    new = classes[rng.choice(3, 3_000, p=[0.1, 0.6, 0.3])]
    found = feed(versions, "2", 5_000, new)
    assert [f.kind for f in found] == ["version_regression"]
    mix = found[0].comparison.worse[0]
    assert mix.metric == "class_mix" and mix.detail in {"buy", "browse"}

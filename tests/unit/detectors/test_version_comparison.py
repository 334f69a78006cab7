"""Version comparison: the records, the sequential test and the monitor's decisions."""

from detectors.monitor.comparison import ComparedFigure, VersionComparison


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

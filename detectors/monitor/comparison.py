"""What a version comparison found: the figures of two versions of one model, side by side.

Plain frozen records (no pydantic): the monitor produces them, the prediction
pipeline copies them into the detection contract
(:class:`fireline.detections.VersionComparisonModel`), Slack and the replay show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ComparisonMode = Literal["deploy", "canary"]

# Figures judged on labelled outcomes (their counts are labels, not predictions).
LABELLED = frozenset({"error_rate", "mae", "rmse", "class_error"})
# Figures that are fractions, shown as percentages.
FRACTIONS = frozenset(
    {
        "error_rate",
        "positive_rate",
        "class_mix",
        "class_error",
        "estimated_accuracy",
        "estimated_precision",
        "estimated_recall",
    }
)


@dataclass(frozen=True, slots=True)
class ComparedFigure:
    """One figure of the baseline and of the candidate, on how many events each.

    ``metric`` names the figure: ``error_rate``, ``mean_score``, ``positive_rate``,
    ``class_mix`` (the share of the class that moved most, named in ``detail``),
    ``latency_p50_ms``, ``estimated_accuracy``, ``estimated_roc_auc``, ``mae``,
    ``rmse``, ``class_error``. ``worse``: the sequential test decided that the
    candidate is worse than the baseline by more than the practical margin.
    ``estimated``: the figure comes from scores, not from labels (CBPE).
    """

    metric: str
    baseline: float
    candidate: float
    baseline_events: int
    candidate_events: int
    worse: bool
    estimated: bool = False
    detail: str = ""  # e.g. the class of a class-mix or per-class figure

    def describe(self) -> str:
        """``error rate 3.6% vs 1.2% (1,800 labelled)``: candidate first."""
        name = self.metric.replace("_", " ").replace(" p50 ms", " p50")
        if self.detail:
            name = f"{name} {self.detail!r}"
        noun = "labelled" if self.metric in LABELLED else "predictions"
        how = ", estimated" if self.estimated else ""
        return (
            f"{name} {_show(self.metric, self.candidate)} vs {_show(self.metric, self.baseline)} "
            f"({self.candidate_events:,} {noun}{how})"
        )


@dataclass(frozen=True, slots=True)
class VersionComparison:
    """A candidate version judged against a baseline version of the same model.

    ``mode``: ``deploy`` compares the candidate with what the baseline did before
    it; ``canary`` compares both on the same time window while both serve.
    ``accepted``: the candidate served long enough without a regression and is
    the new baseline (a ``model_version_accepted`` record), else it regressed.
    """

    baseline_version: str
    candidate_version: str
    figures: tuple[ComparedFigure, ...]
    mode: ComparisonMode
    accepted: bool

    @property
    def worse(self) -> tuple[ComparedFigure, ...]:
        """The figures on which the candidate is worse."""
        return tuple(f for f in self.figures if f.worse)

    def describe(self, model: str) -> str:
        """``fraud v8 is worse than v7: error rate 3.6% vs 1.2% (1,800 labelled), ...``."""
        if self.accepted:
            return (
                f"{model} v{self.candidate_version} accepted as the new baseline "
                f"(no regression against v{self.baseline_version})"
            )
        shown = ", ".join(f.describe() for f in self.worse) or "no figure named"
        where = " (canary: same time window)" if self.mode == "canary" else ""
        return (
            f"{model} v{self.candidate_version} is worse than v{self.baseline_version}{where}: "
            f"{shown}"
        )


def _show(metric: str, value: float) -> str:
    if metric in FRACTIONS:
        return f"{value:.1%}"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    return f"{value:.3g}"

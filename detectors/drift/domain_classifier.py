"""DomainClassifier: a multivariate two-sample test by a classifier (scikit-learn)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field
from threadpoolctl import ThreadpoolController

from detectors.distributions import normal_isf
from detectors.drift.budget import per_check_alpha
from detectors.params import DetectorParams
from fireline.child_process import ChildProcess
from fireline.errors import DetectorError


class DomainClassifierParams(DetectorParams):
    """Parameters of :class:`DomainClassifier`."""

    rows: int = Field(
        default=1000,
        ge=100,
        description="Reference and recent rows per run (half train, half test).",
    )
    every: int = Field(
        default=20_000, ge=1, description="Events between runs (for the false-alarm budget only)."
    )
    false_alarm_rate: float = Field(
        default=1e-9, gt=0, lt=0.01, description="False alarms per event allowed to this test."
    )
    consecutive: int = Field(default=1, ge=1, description="Runs in a row to raise or clear.")
    seed: int = Field(default=0, description="Seed of the split and the classifier.")


class DomainClassifier:
    """Tells the reference from the recent rows; an AUC well above 0.5 is drift.

    Rows are numeric vectors (categorical features as ordinal codes, missing as
    NaN). :meth:`update` keeps the last ``rows`` of them (a fixed ring, one row or
    a 2-D micro-batch); :meth:`run`, called periodically off the hot path, trains
    a histogram gradient-boosting classifier on half of ``rows`` reference rows
    against half of the recent ones and measures its AUC on the other halves.
    For a classifier trained on other data, the held-out AUC under no drift is a
    Mann-Whitney statistic: mean 0.5, variance ``(n1 + n2 + 1) / (12 n1 n2)``,
    whatever the data, so the threshold is ``0.5 + z(alpha)`` of those standard
    deviations, ``alpha`` the per-run share of ``false_alarm_rate`` (runs every
    ``every`` events). When the alarm rises, permutation importances on the
    held-out rows name the features that moved most (:attr:`top_features`).
    Hysteresis: ``consecutive`` runs above the threshold to raise, as many below
    the midpoint of 0.5 and the threshold to clear.

    Parameters: :class:`DomainClassifierParams`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(7)
        >>> reference = rng.normal(size=(1000, 5))
        >>> test = DomainClassifier(rows=1000).fit(reference, ["a", "b", "c", "d", "e"])
        >>> _ = test.update(rng.normal(size=(1000, 5))).run()
        >>> test.alarm
        False
        >>> moved = rng.normal(size=(1000, 5))
        >>> moved[:, 3] += 0.5  # one of five features shifts by half a sigma
        >>> test.update(moved).run(), test.top_features[0]
        (True, 'd')
    """

    Params: ClassVar[type[DomainClassifierParams]] = DomainClassifierParams

    def __init__(self, params: DomainClassifierParams | None = None, /, **overrides: Any) -> None:
        self.params = DomainClassifierParams.of(params, overrides, "DomainClassifier")
        half = self.params.rows // 2
        z = float(normal_isf(per_check_alpha(self.params.false_alarm_rate, self.params.every)))
        self.threshold = 0.5 + z * math.sqrt((2 * half + 1) / (12 * half * half))
        self.reset()

    def reset(self) -> None:
        """Forget the reference, the recent rows and the alarm."""
        self._reference: npt.NDArray[np.float64] | None = None
        self._names: list[str] = []
        self._categorical: list[bool] = []
        self._ring = np.zeros((0, 0))
        self._filled = 0
        self._pos = 0
        self._runs = 0
        self._run = 0
        self._alarm = False
        self._auc = 0.5
        self._top: list[str] = []

    def fit(
        self, reference: npt.NDArray[Any], names: list[str], categorical: list[bool] | None = None
    ) -> Self:
        """Keep up to ``rows`` reference rows (a seeded sample) with their column names."""
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[1] != len(names) or reference.shape[0] < 100:
            raise DetectorError(
                f"the reference must be at least 100 rows of {len(names)} columns; "
                f"got shape {reference.shape}."
            )
        rng = np.random.default_rng(self.params.seed)
        take = rng.permutation(reference.shape[0])[: self.params.rows]
        self._reference = reference[take]
        self._names = list(names)
        self._categorical = list(categorical or [False] * len(names))
        self._ring = np.zeros((self.params.rows, len(names)))
        return self

    def update(self, rows: npt.NDArray[Any]) -> Self:
        """Add one row (1-D) or a micro-batch of rows (2-D) to the recent ring."""
        batch = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if self._reference is None or batch.shape[1] != len(self._names):
            raise DetectorError(
                f"expected rows of the {len(self._names)} fitted columns; got shape {batch.shape}."
            )
        size = self.params.rows
        batch = batch[-size:]
        n = batch.shape[0]
        index = (self._pos + np.arange(n)) % size
        self._ring[index] = batch
        self._pos = (self._pos + n) % size
        self._filled = min(size, self._filled + n)
        return self

    def run(self) -> bool:
        """Run the test on the current rows; return whether the alarm is raised."""
        job = self.prepare()
        if job is not None:
            self.finish(job())
        return self._alarm

    def prepare(self) -> ClassifierTest | None:
        """Snapshot the rows for one test; the returned job may run in another thread or process.

        The job touches nothing of this detector (it is picklable: its arrays and
        a module-level fit), so the monitor can go on feeding rows while it runs;
        :meth:`finish` applies its outcome. None when the recent ring is not full yet.
        """
        rows, seed = self.params.rows, self.params.seed
        if self._reference is None or self._filled < rows:
            return None
        rng = np.random.default_rng(seed + self._runs)
        self._runs += 1
        x = np.vstack([self._reference, self._ring])
        y = np.repeat([0, 1], rows)
        train = np.zeros(x.shape[0], dtype=bool)
        for part in (np.arange(rows), rows + np.arange(rows)):
            train[rng.permutation(part)[: rows // 2]] = True
        # Whether a high AUC would raise the alarm is known now: only then are the
        # (costly) importances worth computing.
        raising = not self._alarm and self._run + 1 >= self.params.consecutive
        categorical = np.array(self._categorical) if any(self._categorical) else None
        return ClassifierTest(
            x, y, train, categorical, seed, raising, self.threshold, list(self._names)
        )

    def finish(self, outcome: Outcome) -> bool:
        """Apply a test's outcome (with hysteresis); return whether the alarm is raised."""
        self._auc = outcome.auc
        clear_at = (0.5 + self.threshold) / 2
        crossing = self._auc < clear_at if self._alarm else self._auc >= self.threshold
        self._run = self._run + 1 if crossing else 0
        if self._run >= self.params.consecutive:
            self._alarm, self._run = not self._alarm, 0
            self._top = list(outcome.top or []) if self._alarm else []
        return self._alarm

    @property
    def alarm(self) -> bool:
        """Whether the last runs found the recent rows distinguishable."""
        return self._alarm

    @property
    def auc(self) -> float:
        """The held-out AUC of the last run (0.5 before the first)."""
        return self._auc

    @property
    def score(self) -> float:
        """``(auc - 0.5) / ((auc - 0.5) + (threshold - 0.5))``: 0.5 at the threshold."""
        excess = max(self._auc - 0.5, 0.0)
        return excess / (excess + self.threshold - 0.5) if excess > 0 else 0.0

    @property
    def top_features(self) -> list[str]:
        """The features that moved most (by permutation importance) while alarmed."""
        return list(self._top)

    def __repr__(self) -> str:
        return DomainClassifierParams.render("DomainClassifier", self.params)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one test found: the held-out AUC, and the top features if it raised."""

    auc: float
    top: list[str] | None


@dataclass(frozen=True, slots=True, eq=False)
class ClassifierTest:
    """One test's rows and settings; calling it fits and scores (picklable, for a child process)."""

    x: npt.NDArray[np.float64]  # reference rows, then recent rows
    y: npt.NDArray[np.int64]  # 0 reference, 1 recent
    train: npt.NDArray[np.bool_]  # the training half of each
    categorical: npt.NDArray[np.bool_] | None
    seed: int
    raising: bool  # whether a high AUC would raise the alarm: only then are importances worth it
    threshold: float
    names: list[str]

    def __call__(self) -> Outcome:
        """Fit on the training halves, score the others (one native thread)."""
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score

        x, y, train = self.x, self.y, self.train
        model = HistGradientBoostingClassifier(
            max_iter=60,
            learning_rate=0.1,
            max_leaf_nodes=15,
            categorical_features=self.categorical,
            random_state=self.seed,
        )
        with _threadpools().limit(limits=1):  # off the hot path, but on a shared machine
            model.fit(x[train], y[train])
            auc = float(roc_auc_score(y[~train], model.predict_proba(x[~train])[:, 1]))
            top = None
            if self.raising and auc >= self.threshold:
                top = _importances(model, x[~train], y[~train], self.names, self.seed)
        return Outcome(auc, top)


def classifier_process(preload: bool = True) -> ChildProcess:
    """The process's child for the domain classifier's fits (~0.2 s of CPU each).

    A fit in a thread holds the GIL against the event loop for much of its time;
    in a child it runs on another core. One per process, shared by its
    monitors (:data:`FITS`). With ``preload`` the child starts now and imports
    scikit-learn (~1.2 s of CPU) while the caller starts (a worker joins its
    group, a replay reads its first lines); else it starts with the first fit.
    """
    if preload:
        FITS.start()
    return FITS


def preload_classifier() -> None:
    """Import what a fit needs and find the native thread pools, ahead of the first fit."""
    import sklearn.ensemble
    import sklearn.inspection
    import sklearn.metrics  # noqa: F401

    _threadpools()


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The native thread pools (OpenMP, BLAS), found once: a search costs ~10 ms a fit.

    First called after scikit-learn's import, so its OpenMP runtime is among them.
    """
    return ThreadpoolController()


def _importances(
    model: Any, x: npt.NDArray[Any], y: npt.NDArray[Any], names: list[str], seed: int
) -> list[str]:
    from sklearn.inspection import permutation_importance

    result = permutation_importance(model, x, y, scoring="roc_auc", n_repeats=3, random_state=seed)
    order = np.argsort(-result.importances_mean)
    return [names[i] for i in order if result.importances_mean[i] > 0][:5]


FITS = ChildProcess("classifier", preload_classifier)
"""The domain classifier's child process. Not the charts' (memory for latency):
a chart is wanted at once, for an incident's first message, and must not
queue behind a fit; each child costs its own interpreter and imports."""

"""ModelMonitor: every prediction-log detector of one model version.

A version goes through three phases. **Warm-up** (``warmup`` events): nothing
is learned and nothing alarms (caches, canary ramp). **Reference**
(``reference_size`` events): the events are kept; at the end the schema is read
from them (a feature is numeric if most of its non-null values are numbers,
categorical otherwise) and every detector is fitted on them, with thresholds
calibrated to the :class:`~detectors.drift.budget.FalseAlarmBudget` split over all
tests. **Monitoring**: each micro-batch feeds, per feature, covariate drift
(numeric: KS, PSI, Wasserstein, mean-shift CUSUM; categorical: chi-square,
Jensen-Shannon, unseen categories) and data quality (null/missing rate, type
changes, out-of-range; new fields once each); prediction drift (score
distribution or class mix); latency spikes from ``latency_ms``; and, every
``classifier_every`` events, the domain-classifier test. Outcomes (labels
joined by the caller) feed error-rate drift after their own reference of
``label_reference`` outcomes. Each rising alarm becomes one :class:`Finding`.

**Inputs are the model's, not the version's.** A new version of a model whose
monitor already watches its inputs (``inputs=``) takes over that monitor's
feature detectors, known fields and domain classifier (the same objects: every
version serving feeds them) and watches them from its first event; only its own
output (prediction, latency, error rate) goes through warm-up and reference. A
deploy therefore keeps the input reference, and a drift that began before it
stays visible; features the new version adds get a fresh reference from its
reference events (they are not reported as new fields).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from detectors.base import bounded
from detectors.drift.base import DriftDetector
from detectors.drift.budget import FalseAlarmBudget
from detectors.drift.categorical import CategoricalDriftParams
from detectors.drift.chi_square import ChiSquareDrift
from detectors.drift.domain_classifier import DomainClassifier, Outcome
from detectors.drift.jensen_shannon import JensenShannonDrift
from detectors.drift.ks import KSDrift, KSDriftParams
from detectors.drift.mean_shift import MeanShift, MeanShiftParams
from detectors.drift.out_of_range import OutOfRange
from detectors.drift.psi import PSIDrift, PSIDriftParams
from detectors.drift.rate_increase import RateIncrease
from detectors.drift.unseen_categories import UnseenCategories, UnseenCategoriesParams
from detectors.drift.wasserstein import WassersteinDrift, WassersteinDriftParams
from detectors.drift.window import WindowDriftParams
from detectors.metric.latency_spike import LatencySpike
from detectors.monitor.records import (
    COVARIATE_DRIFT,
    DATA_QUALITY,
    HELD_TEST,
    LATENCY_SPIKE,
    MULTIVARIATE_DRIFT,
    PERFORMANCE_DRIFT,
    PREDICTION_DRIFT,
    Finding,
    Held,
    Prediction,
)
from detectors.monitor.versions import VersionComparisonParams
from fireline.errors import ConfigError

log = logging.getLogger(__name__)

PREDICTION = "<prediction>"  # the column name of the model's output
# A batch's fields read in C (map), not a Python loop over its events.
_FEATURES = operator.attrgetter("features")
_PREDICTION = operator.attrgetter("prediction")
_LATENCY = operator.attrgetter("latency_ms")


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Tuning of a :class:`ModelMonitor` (validated)."""

    warmup: int = 500
    reference_size: int = 2000
    window: int = 500
    step: int = 250
    label_reference: int = 1000
    classifier_every: int = 20_000  # 0: no domain classifier
    classifier_rows: int = 1000
    budget: FalseAlarmBudget = field(default_factory=FalseAlarmBudget)
    seed: int = 0
    versions: VersionComparisonParams = field(default_factory=VersionComparisonParams.defaults)

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ConfigError(f"warmup must not be negative; got {self.warmup}.")
        if self.reference_size < 200:
            raise ConfigError(f"reference_size must be at least 200; got {self.reference_size}.")
        if not 10 <= self.window <= self.reference_size:
            raise ConfigError(f"window must be between 10 and reference_size; got {self.window}.")
        if not 1 <= self.step <= self.window:
            raise ConfigError(f"step must be between 1 and window; got {self.step}.")
        if self.label_reference < 100:
            raise ConfigError(f"label_reference must be at least 100; got {self.label_reference}.")
        if self.classifier_every < 0:
            raise ConfigError(
                f"classifier_every must not be negative; got {self.classifier_every}."
            )


class _ColumnParams(NamedTuple):
    """The parameters of a version's column detectors, one instance each for all columns.

    Shared instances keep the state small and let the numeric columns' detectors
    be fed together (:meth:`DriftDetector.update_many`).
    """

    ks: KSDriftParams
    psi: PSIDriftParams
    wasserstein: WassersteinDriftParams
    mean_shift: MeanShiftParams
    window: WindowDriftParams  # out-of-range and the rates
    categorical: CategoricalDriftParams
    unseen: UnseenCategoriesParams

    @classmethod
    def of(cls, config: MonitorConfig, rate: float) -> _ColumnParams:
        """Windows and steps from ``config``, ``rate`` false alarms per event each."""
        common: dict[str, Any] = {
            "window": config.window,
            "step": config.step,
            "false_alarm_rate": rate,
        }
        return cls(
            KSDriftParams(**common),
            PSIDriftParams(**common),
            WassersteinDriftParams(seed=config.seed, **common),
            MeanShiftParams(step=config.step, false_alarm_rate=rate),
            WindowDriftParams(**common),
            CategoricalDriftParams(**common),
            UnseenCategoriesParams(**common),
        )


@dataclass(slots=True)
class _Column:
    """The detectors of one feature (or of the prediction)."""

    name: str
    numeric: bool
    drift: list[DriftDetector[Any]]
    missing: RateIncrease
    wrong_type: RateIncrease
    codes: dict[str, int]  # categorical: ordinal codes for the domain classifier


class ModelMonitor:
    """All prediction-log detectors of one (model, model_version)."""

    def __init__(
        self,
        model: str,
        version: str,
        config: MonitorConfig | None = None,
        executor: Executor | None = None,
        inputs: ModelMonitor | None = None,
        hold_findings: bool = False,
    ) -> None:
        """``inputs``: the monitor of the version before, whose input detectors carry on.

        ``executor``: where the domain classifier's tests run. None runs them
        inline (deterministic); the worker passes a child process so a fit never
        holds up ingestion, and collects the outcome on a later batch. With
        ``hold_findings`` (replay) a test's findings come back in their inline
        place instead: a ``held_test`` finding stands there (see
        :class:`~detectors.monitor.records.Held`), and a test is settled before
        the next one starts, so the detections are the inline ones.
        """
        self.model = model
        self.executor = executor
        self.hold_findings = hold_findings
        self._pending: tuple[Prediction, Future[Outcome]] | None = None
        # Held tests on this monitor's classifier (shared with the version it inherits from).
        self._holds: list[Held] = []
        self.version = version
        self.config = config or MonitorConfig()
        self.events = 0
        self._reference: list[Prediction] | None = []
        self._columns: list[_Column] = []
        self._known_fields: set[str] = set()
        self._latency = LatencySpike()
        self._errors: RateIncrease | None = None
        self._classifier: DomainClassifier | None = None
        self._classified: list[_Column] = []  # the columns the classifier was fitted on
        self._since_classifier = 0
        self._rate = 0.0  # false alarms per event of each test
        self._inherited = inputs is not None and inputs.watches_inputs
        if inputs is not None:
            inputs._settle_held()  # the classifier may carry on here: as inline, outcome first
        if inputs is not None and self._inherited:
            self._columns = [c for c in inputs._columns if c.name != PREDICTION]
            self._known_fields = inputs._known_fields
            self._classifier, self._classified = inputs._classifier, inputs._classified
            self._holds = inputs._holds
            self._rate = inputs._rate

    def __getstate__(self) -> dict[str, Any]:
        """Picklable: a test running elsewhere is dropped (the next one comes round)."""
        state = self.__dict__.copy()
        state["executor"] = None
        state["_pending"] = None
        state["_holds"] = []
        return state

    @property
    def watches_inputs(self) -> bool:
        """Whether feature detectors are live (after the reference, or taken over)."""
        return any(c.name != PREDICTION for c in self._columns)

    @property
    def phase(self) -> str:
        """``warmup``, ``reference`` or ``monitoring``."""
        if self._reference is None:
            return "monitoring"
        return "warmup" if self.events < self.config.warmup else "reference"

    # -- predictions ---------------------------------------------------------------

    def observe(self, batch: Sequence[Prediction]) -> list[Finding]:
        """Learn from a micro-batch of this version's predictions, in time order."""
        found: list[Finding] = []
        start = 0
        while start < len(batch) and self._reference is not None:
            cfg = self.config
            if self.events < cfg.warmup:
                take = min(len(batch) - start, cfg.warmup - self.events)
            else:
                take = min(len(batch) - start, cfg.reference_size - len(self._reference))
                self._reference.extend(batch[start : start + take])
            if self._inherited:  # the model's inputs are watched meanwhile
                found += self._monitor(batch[start : start + take])
            self.events += take
            start += take
            if len(self._reference) == cfg.reference_size:
                self._start(self._reference)
        if start < len(batch):
            rest = batch[start:] if start else batch
            found += self._monitor(rest)
            self.events += len(rest)
        return found

    def _start(self, reference: list[Prediction]) -> None:
        cfg = self.config
        self._reference = None
        features = [p.features for p in reference]
        watched = {c.name for c in self._columns}
        names = sorted({name for f in features for name in f} - watched)
        self._known_fields.update(names)
        columns = [(n, [f.get(n) for f in features]) for n in names]
        columns.append((PREDICTION, [_prediction_value(p.prediction) for p in reference]))
        kinds = [(n, values, _mostly_numeric(values)) for n, values in columns]
        if not self._inherited:
            tests = sum((7 if numeric else 5) for _, _, numeric in kinds) + 2
            self._rate = cfg.budget.rate_per_test(tests)
        params = _ColumnParams.of(cfg, self._rate)
        self._errors = RateIncrease(params.window, reference_size=cfg.label_reference)
        for name, values, numeric in kinds:
            self._columns.append(self._column(name, values, numeric, params))
        if not self._inherited:
            self._start_classifier(reference, self._rate)

    def _column(
        self, name: str, values: list[Any], numeric: bool, params: _ColumnParams
    ) -> _Column:
        drift: list[DriftDetector[Any]]
        if numeric:
            drift = [
                KSDrift(params.ks),
                PSIDrift(params.psi),
                WassersteinDrift(params.wasserstein),
                MeanShift(params.mean_shift),
                OutOfRange(params.window),
            ]
        else:
            drift = [
                ChiSquareDrift(params.categorical),
                JensenShannonDrift(params.categorical),
                UnseenCategories(params.unseen),
            ]
        missing, wrong = _indicators(values, numeric)
        column = _Column(
            name,
            numeric,
            [],
            RateIncrease(params.window),
            RateIncrease(params.window),
            codes={},
        )
        usable = _numbers(values) if numeric else _texts(values)
        if usable.size >= 100:  # else: too sparse to have a distribution; quality only
            column.drift = [d.fit(usable) for d in drift]
        column.missing.fit(missing)
        column.wrong_type.fit(wrong)
        if not numeric:
            names, counts = np.unique(usable.astype(str), return_counts=True)
            top = names[np.argsort(-counts, kind="stable")[:50]]
            column.codes = {str(v): i for i, v in enumerate(top)}
        return column

    def _start_classifier(self, reference: list[Prediction], rate: float) -> None:
        cfg = self.config
        features = [c for c in self._columns if c.name != PREDICTION]
        if cfg.classifier_every == 0 or not features:
            return
        self._classified = features
        self._classifier = DomainClassifier(
            rows=min(cfg.classifier_rows, cfg.reference_size),
            every=cfg.classifier_every,
            false_alarm_rate=rate,
            seed=cfg.seed,
        ).fit(
            self._matrix([p.features for p in reference], features),
            [c.name for c in features],
            [not c.numeric for c in features],
        )

    def _monitor(self, batch: Sequence[Prediction]) -> list[Finding]:
        found: list[Finding] = []
        features = list(map(_FEATURES, batch))
        # One pass over the dicts for every feature, and one float conversion for
        # all numeric ones: per-feature passes cost more than the detectors.
        has_prediction = self._columns[-1].name == PREDICTION
        names = [c.name for c in (self._columns[:-1] if has_prediction else self._columns)]
        values, complete = _transpose(features, names)
        # A new field is impossible when every event has the watched fields (all
        # known) and no other: their sizes tell, without a pass over the keys. (A
        # new version still learning gives its own fields a reference instead.)
        exactly = complete and {*map(len, features)} == {len(names)}
        if self._reference is None and not exactly:
            found += self._new_fields(batch, features)
        if has_prediction:  # the last column (not yet while a new version learns it)
            predictions: tuple[Any, ...] = tuple(map(_PREDICTION, batch))
            if not all(type(v) is float for v in predictions):  # floats are kept as they are
                predictions = tuple(map(_prediction_value, predictions))
            values.append(predictions)
        numeric = [j for j, c in enumerate(self._columns) if c.numeric]
        block = _float_block([values[j] for j in numeric], len(batch))
        floats = dict(zip(numeric, block, strict=True))
        rows_finite = np.asarray(np.isfinite(block).all(axis=1))
        rows_clean = np.asarray(~np.isnan(block).any(axis=1))
        finite = {j: bool(rows_finite[k]) for k, j in enumerate(numeric)}
        clean = {j: bool(rows_clean[k]) for k, j in enumerate(numeric)}
        texts = {j: _all_texts(values[j]) for j, c in enumerate(self._columns) if not c.numeric}
        fed, quiet = self._feed_groups(values, floats, finite, texts, len(batch))
        for j, column in enumerate(self._columns):
            kind = PREDICTION_DRIFT if column.name == PREDICTION else COVARIATE_DRIFT
            if j not in fed:
                _feed_detectors(
                    column,
                    values[j],
                    floats.get(j),
                    clean.get(j, False),
                    finite.get(j, False),
                    texts.get(j, False),
                    rates_fed=j in quiet,
                )
            found += self._column_findings(batch, column, kind)
        found += self._feed_latency(batch)
        found += self._feed_classifier(batch, values, floats, texts)
        return found

    def _feed_groups(
        self,
        values: list[tuple[Any, ...]],
        floats: dict[int, npt.NDArray[np.float64]],
        finite: dict[int, bool],
        texts: dict[int, bool],
        n: int,
    ) -> tuple[set[int], set[int]]:
        """Feed columns in step; the indices of those fed, and of those whose rates were.

        Fed one by one, each detector costs a few dozen NumPy calls per micro-batch
        and per check whatever the column's size, which dominated the monitor's
        cost; :meth:`DriftDetector.update_many` feeds the columns in step (same
        detectors, same phase: the usual case) with one set of calls for all: the
        drift detectors of the numeric columns with only finite values in this
        batch, those of the categorical columns with only text, and the missing
        and wrong-type rates of every column with nothing missing and nothing of
        the wrong type (those, and categorical ones of text).
        """
        columns = self._columns
        numeric = [j for j in floats if finite[j] and columns[j].drift]
        if len(numeric) >= 2:  # one alone is as fast fed the usual way
            block = np.array([floats[j] for j in numeric])
            # A column's detectors are fitted on one reference and always fed together.
            drift = [columns[j].drift for j in numeric]
            DriftDetector.update_many(drift, block, same_windows=True)
        else:
            numeric = []
        text = [j for j, only_text in texts.items() if only_text]
        categorical = [j for j in text if columns[j].drift]
        if len(categorical) >= 2:
            categories = np.array([values[j] for j in categorical], dtype=object)
            DriftDetector.update_many([columns[j].drift for j in categorical], categories)
        else:
            categorical = []
        quiet = numeric + text
        if len(quiet) < 2:
            return {*numeric, *categorical}, set()
        rates = [(columns[j].missing, columns[j].wrong_type) for j in quiet]
        DriftDetector.update_many(rates, np.zeros((len(quiet), n)))
        return {*numeric, *categorical}, set(quiet)

    def _column_findings(
        self, batch: Sequence[Prediction], column: _Column, kind: str
    ) -> list[Finding]:
        """What one column's detectors found in this batch (they have been fed)."""
        found: list[Finding] = []
        feature = None if column.name == PREDICTION else column.name
        for detector in column.drift:
            for change in detector.changes:
                found.append(
                    self._detection(
                        batch[change.index],
                        kind,
                        feature,
                        change.score,
                        _drift_message(detector, change.observed, change.baseline),
                        cleared=not change.raised,
                    )
                )
        for rate, what in ((column.missing, "null/missing"), (column.wrong_type, "wrong-type")):
            for change in rate.changes:
                message = (
                    f"{what} rate {rate.recent_rate:.1%} over the last {rate.params.window} "
                    f"events (reference {rate.reference_rate:.1%})"
                )
                found.append(
                    self._detection(
                        batch[change.index],
                        DATA_QUALITY,
                        feature,
                        change.score,
                        message,
                        cleared=not change.raised,
                    )
                )
        return found

    def _new_fields(
        self, batch: Sequence[Prediction], features: list[Mapping[str, Any]]
    ) -> list[Finding]:
        known = self._known_fields
        found: list[Finding] = []
        if all(map(known.issuperset, features)):  # the common case, in C
            return found
        for i, f in enumerate(features):
            if len(f.keys() - known) == 0:
                continue
            for name in sorted(f.keys() - known):
                known.add(name)
                found.append(
                    self._detection(
                        batch[i],
                        DATA_QUALITY,
                        name,
                        1.0,
                        f"new field {name!r} not in the reference",
                    )
                )
        return found

    def _feed_latency(self, batch: Sequence[Prediction]) -> list[Finding]:
        every = list(map(_LATENCY, batch))
        latencies = [v for v in every if v is not None] if None in every else every
        if not latencies:
            return []
        changes = self._latency.update(latencies).changes
        if not changes:
            return []
        positions = [i for i, v in enumerate(every) if v is not None]
        return [
            self._detection(
                batch[positions[c.index]],
                LATENCY_SPIKE,
                None,
                c.score,
                f"latency {c.observed:.1f} ms against a baseline of {c.baseline:.1f} ms",
                cleared=not c.raised,
                observed=c.observed,
                baseline=c.baseline,
            )
            for c in changes
        ]

    def _feed_classifier(
        self,
        batch: Sequence[Prediction],
        values: list[tuple[Any, ...]],
        floats: dict[int, npt.NDArray[np.float64]],
        texts: dict[int, bool],
    ) -> list[Finding]:
        if self._classifier is None:
            return []
        rows = np.empty((len(batch), len(self._classified)))
        where = {id(c): j for j, c in enumerate(self._columns)}
        for k, column in enumerate(self._classified):
            j = where[id(column)]
            rows[:, k] = floats[j] if column.numeric else _codes(values[j], column.codes, texts[j])
        self._classifier.update(rows)
        self._since_classifier += len(batch)
        found = self._collect_classifier()
        if self._classifier is None or self._since_classifier < self.config.classifier_every:
            return found
        self._settle_held()  # as inline: the outcome before the next test
        if self._classifier is None or self._pending is not None:
            return found  # one test at a time; the ring keeps filling meanwhile
        self._since_classifier = 0
        job = self._classifier.prepare()
        if job is None:
            return found
        if self.executor is None:
            return found + self._classifier_outcome(batch[-1], job)
        self._pending = (batch[-1], self.executor.submit(job))
        if not self.hold_findings:
            return found
        held = self._hold(*self._pending)
        self._holds.append(held)
        return [*found, self._detection(batch[-1], HELD_TEST, None, 0.0, "", held=held)]

    def _hold(self, event: Prediction, future: Future[Outcome]) -> Held:
        settled: list[list[Finding]] = []

        def settle() -> list[Finding]:
            if not settled:
                if self._pending is not None and self._pending[1] is future:
                    self._pending = None
                self._holds[:] = [h for h in self._holds if h is not held]
                settled.append(self._classifier_outcome(event, future.result))
            return settled[0]

        held = Held(future.done, settle)
        return held

    def _settle_held(self) -> None:
        for held in list(self._holds):
            held.settle()

    def _collect_classifier(self) -> list[Finding]:
        """The outcome of a test that ran in the executor, once it is ready (not held)."""
        if self.hold_findings or self._pending is None or not self._pending[1].done():
            return []
        event, future = self._pending
        self._pending = None
        return self._classifier_outcome(event, future.result)

    def _classifier_outcome(self, event: Prediction, job: Callable[[], Outcome]) -> list[Finding]:
        assert self._classifier is not None
        was = self._classifier.alarm
        try:
            raised = self._classifier.finish(job())
        except BrokenExecutor as exc:  # the child process died (killed, out of memory)
            log.warning(
                "%s v%s: a domain-classifier test was lost (%s); the next one comes round",
                self.model,
                self.version,
                exc,
            )
            return []
        except ValueError as exc:  # scikit-learn refusing odd columns must not stop monitoring
            log.warning(
                "%s v%s: domain classifier disabled for this version: %s",
                self.model,
                self.version,
                exc,
            )
            self._classifier = None
            return []
        if not raised or was:
            return []
        test = self._classifier
        top = ", ".join(test.top_features) or "none singled out"
        message = (
            f"a classifier tells the last {test.params.rows} events from the reference: "
            f"held-out AUC {test.auc:.3f} >= {test.threshold:.3f}; moved most: {top}"
        )
        feature = test.top_features[0] if test.top_features else None
        return [self._detection(event, MULTIVARIATE_DRIFT, feature, test.score, message)]

    def _matrix(
        self, features: Sequence[Mapping[str, Any]], columns: list[_Column]
    ) -> npt.NDArray[np.float64]:
        out = np.empty((len(features), len(columns)))
        for j, column in enumerate(columns):
            values = [f.get(column.name) for f in features]
            out[:, j] = _as_floats(values) if column.numeric else _codes(values, column.codes)
        return out

    # -- outcomes ---------------------------------------------------------------------

    def observe_outcomes(self, errors: Sequence[float], labels: Sequence[float]) -> list[Finding]:
        """Learn from joined outcomes (1 = the prediction was wrong) with their label times."""
        if self._errors is None or not errors:
            return []
        detector = self._errors
        return [
            Finding(
                labels[c.index],
                self.model,
                self.version,
                PERFORMANCE_DRIFT,
                None,
                c.score,
                f"error rate {detector.recent_rate:.1%} over the last {detector.params.window} labelled "
                f"predictions (reference {detector.reference_rate:.1%})",
                not c.raised,
            )
            for c in detector.update(np.asarray(errors, dtype=np.float64)).changes
        ]

    def _detection(
        self,
        event: Prediction,
        kind: str,
        feature: str | None,
        score: float,
        message: str,
        cleared: bool = False,
        observed: float | None = None,
        baseline: float | None = None,
        held: Held | None = None,
    ) -> Finding:
        return Finding(
            event.timestamp,
            self.model,
            self.version,
            kind,
            feature,
            score,
            message,
            cleared,
            observed=observed,
            baseline=baseline,
            held=held,
        )


def _feed_detectors(
    column: _Column,
    values: Sequence[Any],
    floats: npt.NDArray[np.float64] | None,
    clean: bool,
    finite: bool,
    texts: bool,
    rates_fed: bool,
) -> None:
    """Feed one column's detectors (not the rates if ``rates_fed`` already).

    ``texts``: a categorical column whose values are all ``str``.
    """
    if column.drift:  # validated once for all of the column's detectors
        usable: npt.NDArray[Any]
        positions: npt.NDArray[np.int64] | None
        if floats is not None and finite:
            usable, positions = floats, None
        elif texts:  # every value a category already
            usable, positions = np.array(values, dtype=object), None
        else:
            usable, positions = column.drift[0].valid(
                floats if floats is not None else list(values)
            )
        shared: tuple[DriftDetector[Any], npt.NDArray[Any]] | None = None
        for detector in column.drift:  # encoded once for those that encode alike
            encoded = None
            if shared is not None and detector.encodes_like(shared[0]):
                encoded = shared[1]
            elif detector.fitted:
                encoded = detector.encode(usable)
                shared = (detector, encoded)
            detector.update_valid(usable, positions, encoded)
    if rates_fed:
        return
    if clean or texts:  # nothing missing, nothing of the wrong type
        missing = wrong = np.zeros(len(values))
    else:
        missing, wrong = _indicators(values, column.numeric, floats)
    column.missing.update_valid(missing)  # 0/1 values: all valid
    column.wrong_type.update_valid(wrong)


def _drift_message(detector: DriftDetector, observed: float, threshold: float) -> str:
    name = {
        "KSDrift": "KS distance",
        "PSIDrift": "PSI",
        "WassersteinDrift": "Wasserstein distance (sigmas)",
        "MeanShift": "mean-shift CUSUM",
        "OutOfRange": "out-of-range count above expectation",
        "ChiSquareDrift": "chi-square",
        "JensenShannonDrift": "Jensen-Shannon divergence",
        "UnseenCategories": "unseen-category count above expectation",
    }.get(type(detector).__name__, type(detector).__name__)
    return f"{name} {observed:.4g} >= threshold {threshold:.4g} (reference vs recent events)"


def _prediction_value(prediction: object) -> float | str | None:
    if isinstance(prediction, bool):
        return str(prediction).lower()
    if isinstance(prediction, int | float | str):
        return prediction
    return None  # objects: not analysed


def _mostly_numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    numbers = sum(1 for v in present if isinstance(v, int | float) and not isinstance(v, bool))
    return numbers * 2 >= len(present) and numbers > 0


def _transpose(
    features: Sequence[Mapping[str, Any]], names: list[str]
) -> tuple[list[tuple[Any, ...]], bool]:
    """Per name, its value in each event (None where absent), in one pass over the events.

    And whether every event has every name (False when that is not known).
    """
    if len(names) > 1 and all(type(f) is dict for f in features):
        try:  # plain dicts with every field: the common case, done in C
            return list(zip(*map(operator.itemgetter(*names), features), strict=True)), True
        except KeyError:
            pass
    return [tuple(f.get(name) for f in features) for name in names], False


def _float_block(columns: list[tuple[Any, ...]], n: int) -> npt.NDArray[np.float64]:
    """:func:`_as_floats` of each column, as the rows of one array."""
    try:  # one conversion for all; it converts each value as _as_floats would
        block = np.array(columns, dtype=np.float64)
        if block.shape == (len(columns), n):
            return block
    except (TypeError, ValueError):
        pass
    block = np.empty((len(columns), n))
    for j, values in enumerate(columns):  # a bad value falls back in its column only
        block[j] = _as_floats(values)
    return block


def _codes(values: Sequence[Any], codes: dict[str, int], texts: bool | None = None) -> list[float]:
    """The ordinal codes of categorical values; ``texts``: whether all are ``str``, if known."""
    get = codes.get
    if _all_texts(values) if texts is None else texts:  # map() with the dict's own get
        return list(map(get, values, repeat(np.nan)))
    return [get(v, np.nan) if isinstance(v, str) else np.nan for v in values]


def _all_texts(values: Sequence[Any]) -> bool:
    """Whether every value is a str (the types collected in C, not a Python loop)."""
    return {*map(type, values)} <= {str}


def _as_floats(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Numbers as floats (beyond MAX_MAGNITUDE: at it), anything else NaN."""
    try:  # the common case: numbers and None (which becomes NaN)
        return bounded(np.array(values, dtype=np.float64))
    except (TypeError, ValueError):
        return bounded(
            np.array(
                [
                    v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                    for v in values
                ],
                dtype=np.float64,
            )
        )


def _numbers(values: list[Any]) -> npt.NDArray[np.float64]:
    floats = _as_floats(values)
    return floats[np.isfinite(floats)]


def _texts(values: list[Any]) -> npt.NDArray[Any]:
    return np.array([v for v in values if isinstance(v, str)], dtype=object)


def _indicators(
    values: Sequence[Any], numeric: bool, floats: npt.NDArray[np.float64] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per value: missing (absent or null) and of the wrong type for the column."""
    if numeric:
        if floats is None:
            floats = _as_floats(values)
        missing = np.isnan(floats)
        if missing.any():
            missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            wrong = np.isnan(floats) & ~missing
        else:
            wrong = missing
        return missing.astype(np.float64), wrong.astype(np.float64)
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    wrong = np.fromiter(
        (v is not None and not isinstance(v, str) for v in values), dtype=bool, count=len(values)
    )
    return missing.astype(np.float64), wrong.astype(np.float64)

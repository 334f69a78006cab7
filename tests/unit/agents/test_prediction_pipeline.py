"""The worker's prediction path: monitor findings become incident-manager inputs."""

import numpy as np

from agents.kafka.detector_store import DetectorStore
from agents.pipelines.events import LabelEvent, PredictionEvent
from agents.pipelines.prediction_pipeline import PredictionPipeline
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from fireline.detections import Detection


def predictions(n: int, start: int, version: str, shift: float, seed: int) -> list[PredictionEvent]:
    rng = np.random.default_rng(seed)
    return [
        PredictionEvent(
            timestamp=1795255200.0 + (start + i) * 0.1,
            model="fraud",
            model_version=version,
            prediction_id=f"p-{start + i}",
            features={"amount": float(rng.normal(100 + shift, 10)), "country": "DE"},
            prediction=float(rng.uniform()),
        )
        for i in range(n)
    ]


def pipeline(store: DetectorStore | None = None) -> PredictionPipeline:
    config = MonitorConfig(warmup=100, reference_size=1000, window=200, step=50)
    return PredictionPipeline(config, refresh_s=10.0, store=store)


def test_a_shift_raises_covariate_drift_on_the_feature_and_is_re_sent_while_on():
    p = pipeline()
    assert p.process(predictions(1500, 0, "7", 0.0, seed=1)) == ([], [])
    found, _ = p.process(predictions(400, 1500, "7", 15.0, seed=2))
    raised = [d for d in found if not d.refresh and not d.cleared]
    assert raised, "a 1.5 sigma shift of amount must be found"
    assert {d.kind for d in raised} >= {"covariate_drift"}
    drift = next(d for d in raised if d.kind == "covariate_drift")
    assert drift.series == "fraud:amount"
    assert drift.labels == {"model": "fraud", "model_version": "7"}
    assert drift.subject_key == "model:fraud"
    assert drift.signal.message and 0 <= drift.signal.score <= 1
    later, _ = p.process(predictions(200, 1900, "7", 15.0, seed=3))  # 20 s more event time
    assert any(d.refresh and d.series == "fraud:amount" for d in later)


def test_a_latency_spike_in_the_log_names_the_models_latency_series_for_prometheus():
    rng = np.random.default_rng(1)
    events = [
        PredictionEvent(
            timestamp=1795255200.0 + i * 0.1,
            model="fraud",
            model_version="7",
            prediction_id=f"p-{i}",
            features={"amount": 1.0},
            prediction=0.5,
            latency_ms=float(rng.normal(45, 2)) if i < 2000 else 400.0,
        )
        for i in range(2300)
    ]
    found, _ = pipeline().process(events)
    spikes = [d for d in found if d.kind == "latency_spike"]  # raised, then re-sent
    assert spikes and {d.signal.selector for d in spikes} == {'latency_ms{model="fraud"}'}
    assert {d.series for d in spikes} == {"fraud:latency_spike"}  # what incidents key on


def test_drift_has_no_prometheus_series_to_name():
    p = pipeline()
    p.process(predictions(1500, 0, "7", 0.0, seed=1))
    found, _ = p.process(predictions(400, 1500, "7", 15.0, seed=2))
    assert found and all(d.signal.selector == "" for d in found)


def test_a_new_version_is_a_change_not_a_detection():
    p = pipeline()
    p.process(predictions(200, 0, "7", 0.0, seed=1))
    found, changes = p.process(predictions(10, 200, "8", 0.0, seed=2))
    assert found == []
    assert [(c.kind, c.model, c.version, c.previous_version) for c in changes] == [
        ("model_version_change", "fraud", "8", "7")
    ]
    assert changes[0].at == 1795255200.0 + 20.0


def test_labels_are_joined_without_findings_on_a_quiet_model():
    p = pipeline()
    p.process(predictions(300, 0, "7", 0.0, seed=1))
    labels = [
        LabelEvent(timestamp=1795255300.0, model="fraud", prediction_id=f"p-{i}", label=0)
        for i in range(300)
    ]
    assert p.process(labels) == ([], [])
    join = p.monitor.join("fraud")
    assert join is not None and len(join) == 0  # every pending prediction was matched


def test_a_classifier_that_scikit_learn_refuses_is_disabled_not_fatal(monkeypatch, caplog):
    from detectors.drift.domain_classifier import DomainClassifier

    def refuse():
        raise ValueError("scikit-learn says no")

    monkeypatch.setattr(DomainClassifier, "prepare", lambda self: refuse)
    config = MonitorConfig(warmup=0, reference_size=1000, window=200, step=50, classifier_every=500)
    p = PredictionPipeline(config)
    p.process(predictions(1000, 0, "7", 0.0, seed=1))
    p.process(predictions(600, 1000, "7", 0.0, seed=2))  # the classifier's turn comes
    assert "domain classifier disabled" in caplog.text
    found, _ = p.process(predictions(400, 1600, "7", 15.0, seed=3))  # the rest still works
    assert any(d.kind == "covariate_drift" for d in found)


def test_the_classifier_runs_off_the_hot_path_with_the_same_outcome():
    from concurrent.futures import ThreadPoolExecutor

    config = MonitorConfig(warmup=0, reference_size=1000, window=200, step=50, classifier_every=500)
    inline = PredictionLogMonitor(config)
    with ThreadPoolExecutor(1) as executor:
        threaded = PredictionLogMonitor(config, executor=executor)
        batches = [predictions(500, 0, "7", 0.0, seed=1), predictions(500, 500, "7", 0.0, seed=2)]
        batches += [predictions(500, 1000 + 500 * k, "7", 25.0, seed=3 + k) for k in range(6)]
        found: dict[str, list[str]] = {"inline": [], "threaded": []}
        for batch in batches:
            records = [e.to_record() for e in batch]
            found["inline"] += [
                d.message for d in inline.process(records) if d.kind == "multivariate_drift"
            ]
            found["threaded"] += [
                d.message for d in threaded.process(records) if d.kind == "multivariate_drift"
            ]
            pending = threaded.monitor("fraud", "7")._pending
            if pending is not None:
                pending[1].result()  # let the thread finish; collected on the next batch
    assert found["inline"], "the classifier must catch a 2.5 sigma shift"
    assert found["threaded"] == found["inline"]


def test_a_checkpointed_monitor_resumes_without_a_new_warm_up():
    from tests.unit.agents.test_pipeline import FakeTable

    table = FakeTable()
    first = pipeline(DetectorStore(table))
    first.process(predictions(1500, 0, "7", 0.0, seed=1), partition=2)
    assert first.checkpoint() == 3  # the monitor, the label join, the version comparison
    assert table.sent == [
        (2, b"monitor|fraud|7"),
        (2, b"labels|fraud|s0"),
        (2, b"labels|fraud"),
        (2, b"versions|fraud"),
    ]

    restarted = pipeline(DetectorStore(table))
    found, changes = restarted.process(predictions(400, 1500, "7", 15.0, seed=2), partition=2)
    assert changes == []  # the same version resumed: not a deploy
    assert any(d.kind == "covariate_drift" for d in found)
    fresh, _ = pipeline().process(predictions(400, 1500, "7", 15.0, seed=2))
    assert fresh == []  # a fresh monitor would still be warming up


def scored(n: int, start: int, version: str, wrong: float, seed: int):
    """A fraud classifier's predictions and their labels (``wrong`` of them mispredicted)."""
    rng = np.random.default_rng(seed)
    events: list[PredictionEvent | LabelEvent] = []
    for i in range(n):
        truth = bool(rng.random() < 0.2)
        predicted = truth != bool(rng.random() < wrong)
        score = float(rng.uniform(0.97, 1.0) if predicted else rng.uniform(0.0, 0.03))
        at = 1795255200.0 + (start + i) * 0.1
        events.append(
            PredictionEvent(
                timestamp=at,
                model="fraud",
                model_version=version,
                prediction_id=f"p-{start + i}",
                features={"amount": float(rng.normal(100, 10))},
                prediction=score,
            )
        )
        events.append(
            LabelEvent(
                timestamp=at + 0.05, model="fraud", prediction_id=f"p-{start + i}", label=truth
            )
        )
    return events


def test_a_worse_version_is_a_version_regression_with_both_versions_figures():
    p = pipeline()
    p.process(scored(5000, 0, "7", 0.01, seed=1))
    found: list = []
    for k in range(6):
        found += p.process(scored(500, 5000 + 500 * k, "8", 0.06, seed=2 + k))[0]
    regressions = [d for d in found if d.kind == "version_regression" and not d.refresh]
    assert len(regressions) == 1
    regression = regressions[0]
    assert regression.labels == {"model": "fraud", "model_version": "8", "previous_version": "7"}
    assert regression.series == "fraud:version_regression"
    assert regression.comparison is not None
    assert (regression.comparison.baseline_version, regression.comparison.candidate_version) == (
        "7",
        "8",
    )
    assert any(f.worse and f.metric == "error_rate" for f in regression.comparison.figures)
    assert regression.signal.message.startswith("fraud v8 is worse than v7: ")
    assert Detection.model_validate_json(regression.model_dump_json()) == regression
    assert any(d.kind == "version_regression" and d.refresh for d in found)  # still on: re-sent
    cleared = p.accept("fraud", "8")  # an engineer accepts it anyway
    assert [(d.kind, d.cleared) for d in cleared] == [("version_regression", True)]
    later, _ = p.process(scored(500, 8000, "8", 0.06, seed=9))
    assert not [d for d in later if d.kind == "version_regression"]


def test_performance_is_estimated_from_scores_and_realised_from_labels_per_version():
    p = pipeline()
    p.process(scored(2000, 0, "7", 0.01, seed=1))
    rows = {(v, metric, source): value for _, v, metric, source, value in p.performance({"fraud"})}
    assert 0.98 < rows[("7", "accuracy", "estimated")] < 1.0
    assert 0.97 < rows[("7", "accuracy", "realised")] < 1.0
    assert rows[("7", "calibrated", "realised")] == 1.0
    assert rows[("7", "roc_auc", "realised")] > 0.95
    assert p.performance({"other"}) == []


def test_a_worse_version_deployed_while_the_worker_was_down_is_compared_with_the_old_one():
    from tests.unit.agents.test_pipeline import FakeTable

    table = FakeTable()
    before = pipeline(DetectorStore(table))
    before.process(scored(5000, 0, "7", 0.01, seed=1), partition=1)
    before.checkpoint()

    restarted = pipeline(DetectorStore(table))  # v8 went out during the restart
    found: list = []
    changes: list = []
    for k in range(6):
        detections, changed = restarted.process(
            scored(500, 5000 + 500 * k, "8", 0.06, seed=2 + k), partition=1
        )
        found += detections
        changes += changed
    assert [(c.version, c.previous_version) for c in changes] == [("8", "7")]  # still named
    regressions = [d for d in found if d.kind == "version_regression" and not d.refresh]
    assert len(regressions) == 1
    assert regressions[0].comparison is not None
    assert regressions[0].comparison.baseline_version == "7"

    forgetful = pipeline()  # without the checkpoint, v8 would be its own baseline
    alone = [
        d
        for k in range(6)
        for d in forgetful.process(scored(500, 5000 + 500 * k, "8", 0.06, seed=2 + k))[0]
    ]
    assert not [d for d in alone if d.kind == "version_regression"]


def test_an_accepted_version_stays_accepted_after_a_restart():
    from tests.unit.agents.test_pipeline import FakeTable

    table = FakeTable()
    first = pipeline(DetectorStore(table))
    first.process(scored(5000, 0, "7", 0.01, seed=1), partition=0)
    first.process(scored(500, 5000, "8", 0.01, seed=2), partition=0)
    first.checkpoint()
    first.accept("fraud", "8", partition=0)
    first.checkpoint()

    restarted = pipeline(DetectorStore(table))
    compared = restarted.monitor.versions("fraud")
    assert compared is not None
    assert (compared.baseline_version, list(compared.candidates)) == ("8", [])

"""The domain classifier's fits in a child process: the same outcome, a dead child replaced, gone with its worker."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from agents.cli.replay import replay_predictions
from agents.pipelines.offline import DEFAULT_BATCHING, Batching
from detectors.drift.domain_classifier import DomainClassifier, preload_classifier
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import Label, Prediction
from fireline.child_process import ChildProcess
from tests.unit.agents.test_prediction_pipeline import predictions
from tests.unit.orphans import assert_child_exits_with_killed_worker

T0 = 1795255200.0
CONFIG = MonitorConfig(warmup=0, reference_size=1000, window=200, step=50, classifier_every=500)


@pytest.fixture
def child():
    process = ChildProcess("classifier", preload_classifier)
    yield process
    process.close()


def shifted_classifier() -> DomainClassifier:
    rng = np.random.default_rng(7)
    names = ["a", "b", "c", "d", "e"]
    reference, moved = rng.normal(size=(1000, 5)), rng.normal(size=(1000, 5))
    reference[:, 4], moved[:, 4] = rng.integers(0, 3, size=1000), rng.integers(0, 3, size=1000)
    moved[:, 3] += 0.5
    test = DomainClassifier(rows=1000).fit(reference, names, [False] * 4 + [True])
    return test.update(moved)


def test_a_fit_in_the_child_has_the_in_process_auc_and_top_features_bit_for_bit(child):
    job = shifted_classifier().prepare()
    assert job is not None
    inline = job()
    offloaded = child.submit(job).result(timeout=60)
    assert offloaded.top and offloaded.top[0] == "d"  # it raised: importances were computed
    assert (offloaded.auc, offloaded.top) == (inline.auc, inline.top)
    assert child.pids and os.getpid() not in child.pids


def drift_batches() -> list[list]:
    batches = [predictions(500, 0, "7", 0.0, seed=1), predictions(500, 500, "7", 0.0, seed=2)]
    batches += [predictions(500, 1000 + 500 * k, "7", 25.0, seed=3 + k) for k in range(6)]
    return [[e.to_record() for e in batch] for batch in batches]


def test_the_worker_gets_the_inline_outcome_from_the_child(child):
    inline, offloaded = PredictionLogMonitor(CONFIG), PredictionLogMonitor(CONFIG, executor=child)
    found: dict[str, list[str]] = {"inline": [], "offloaded": []}
    for batch in drift_batches():
        found["inline"] += [
            d.message for d in inline.process(batch) if d.kind == "multivariate_drift"
        ]
        found["offloaded"] += [
            d.message for d in offloaded.process(batch) if d.kind == "multivariate_drift"
        ]
        monitor = offloaded.monitor("fraud", "7")
        if monitor is not None and monitor._pending is not None:
            monitor._pending[1].result()  # let the child finish; collected on the next batch
    assert found["inline"], "the classifier must catch a 2.5 sigma shift"
    assert found["offloaded"] == found["inline"]


def test_a_killed_child_loses_its_test_and_the_next_test_gets_a_new_child(child, caplog):
    child.start().result(timeout=60)  # type: ignore[union-attr]  # a preload was given
    monitor = PredictionLogMonitor(CONFIG, executor=child)
    batches = drift_batches()
    for batch in batches[:4]:  # the reference, then the recent rows: the first test starts
        monitor.process(batch)
    model = monitor.monitor("fraud", "7")
    assert model is not None and model._pending is not None
    [pid] = child.pids
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(Exception, match="terminated abruptly"):
        model._pending[1].result(timeout=60)
    with caplog.at_level(logging.WARNING):
        monitor.process(batches[4])  # collects the lost test, starts the next
    assert "a domain-classifier test was lost" in caplog.text
    raised = []
    for batch in batches[5:]:
        raised += [d for d in monitor.process(batch) if d.kind == "multivariate_drift"]
        if model._pending is not None:
            model._pending[1].result(timeout=60)
    assert raised, "the next tests run in a new child and catch the shift"
    assert child.pids and pid not in child.pids


def test_the_classifier_child_exits_when_its_worker_is_killed():
    code = (
        "import os, signal\n"
        "from detectors.drift.domain_classifier import classifier_process\n"
        "child = classifier_process(preload=True)\n"
        "child.start().result(timeout=60)\n"
        "print(*child.pids, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert_child_exits_with_killed_worker(code, "classifier process")


def _scikit_learn_loaded(preload: str) -> tuple[bool, bool]:
    """(in the worker, in its classifier child) after classifier_process(preload) in a fresh worker."""
    code = (
        "import sys\n"
        "from detectors.drift.domain_classifier import classifier_process\n"
        f"child = classifier_process(preload={preload})\n"
        "if child.pids: child.start().result(timeout=60)\n"
        "maps = open(f'/proc/{child.pids[0]}/maps').read() if child.pids else ''\n"
        "print('sklearn.ensemble' in sys.modules, '_hist_gradient_boosting' in maps)\n"
        "child.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=90
    )
    worker, child = out.stdout.split()
    return worker == "True", child == "True"


def test_the_child_imports_scikit_learn_ahead_of_the_first_fit_unless_told_not_to():
    # Imported at the first fit instead, the first test waits the import's ~1.2 s of CPU.
    assert _scikit_learn_loaded("True") == (False, True)  # never in the worker itself
    assert _scikit_learn_loaded("False") == (False, False)  # no child before the first fit


def drifting_log() -> list[Prediction | Label]:
    """Two models, labels interleaved, a deploy mid-stream and a shift the classifier catches."""
    rng = np.random.default_rng(3)
    events: list[Prediction | Label] = []
    for i in range(7000):
        model = "fraud" if i % 2 else "churn"
        version = "8" if model == "fraud" and i >= 3500 and i % 3 else "7"  # a canary
        shift = 2.0 if i >= 3000 else 0.0
        features = {
            "amount": float(rng.normal(100 + 10 * shift, 10)),
            "age": float(rng.normal(40, 5)),
            "country": str(rng.choice(["DE", "FR", "IT"])),
        }
        events.append(
            Prediction(T0 + i * 0.1, model, version, f"p-{i}", features, float(rng.random()))
        )
        if i % 5 == 0 and i >= 20:
            events.append(Label(T0 + i * 0.1 + 0.05, model, f"p-{i - 20}", int(rng.random() < 0.5)))
    return events


@pytest.mark.parametrize("batching", [DEFAULT_BATCHING, Batching(window_s=3.0, max_events=97)])
def test_a_replay_with_the_fits_in_the_child_prints_the_inline_detections_byte_for_byte(
    child, batching
):
    config = MonitorConfig(warmup=0, reference_size=1000, window=200, step=50, classifier_every=400)
    events = drifting_log()
    inline = [json.dumps(d) for d in replay_predictions(events, config, batching)]
    offloaded = [json.dumps(d) for d in replay_predictions(events, config, batching, child)]
    assert sum('"multivariate_drift"' in line for line in inline) >= 2  # both models' alarms
    assert offloaded == inline

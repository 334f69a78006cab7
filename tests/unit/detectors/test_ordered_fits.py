"""The domain classifier's fits in a thread (OrderedFits) find what inline fits find, in order."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from agents.cli.replay import replay_predictions
from agents.pipelines.offline import Batching, prediction_batches
from detectors.drift.domain_classifier import DomainClassifier
from detectors.monitor.model_monitor import MonitorConfig
from detectors.monitor.ordered_fits import OrderedFits
from detectors.monitor.prediction_log import PredictionLogMonitor
from detectors.monitor.records import MULTIVARIATE_DRIFT, Finding, Label, Prediction

# A fit every 500 predictions, on 200 rows: many fits, some raising.
CONFIG = MonitorConfig(
    warmup=0,
    reference_size=400,
    window=100,
    step=50,
    label_reference=100,
    classifier_every=500,
    classifier_rows=200,
)
T0 = 1795255200.0


def log(n: int = 3000, shift_at: int = 1500, version_at: int | None = 2300) -> list[Any]:
    """One model's predictions (a shift of both features, a new version) and labels."""
    rng = np.random.default_rng(5)
    events: list[Prediction | Label] = []
    for i in range(n):
        moved = i >= shift_at
        version = "8" if version_at is not None and i >= version_at else "7"
        features = {
            "amount": float(rng.normal(100 + (8 if moved else 0), 10)),
            "age": float(rng.normal(40 + (3 if moved else 0), 5)),
            "country": str(rng.choice(["DE", "FR", "IT"] if moved else ["DE", "FR"])),
        }
        events.append(Prediction(T0 + i, "fraud", version, f"p-{i}", features, float(rng.random())))
        if i % 3 == 0 and i >= 10:
            events.append(Label(T0 + i + 0.5, "fraud", f"p-{i - 10}", int(rng.random() < 0.4)))
    return events


class _Slow(Future[Any]):
    """A fit that is in only when the test says so, or when someone waits for it."""

    def __init__(self, job: Callable[[], Any]) -> None:
        super().__init__()
        self._job = job

    def finish(self) -> None:
        if not self.done():
            try:
                self.set_result(self._job())
            except Exception as exc:  # noqa: BLE001  # whatever the fit raised, result() raises
                self.set_exception(exc)

    def result(self, timeout: float | None = None) -> Any:
        self.finish()
        return super().result(timeout)


class SlowThread(Executor):
    """An executor whose fits take as long as the test wants (a stand-in for a busy thread)."""

    def __init__(self) -> None:
        self.running: list[_Slow] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = _Slow(lambda: fn(*args, **kwargs))
        self.running.append(future)
        return future

    def finish_all(self) -> None:
        for future in self.running:
            future.finish()
        self.running.clear()


def feed(monitor: PredictionLogMonitor, events: list[Any], size: int) -> list[list[Finding]]:
    """What each micro-batch of ``size`` events returned, then what was still held."""
    out = [monitor.process(events[s : s + size]) for s in range(0, len(events), size)]
    return [*out, monitor.settle()]


def flat(batches: list[list[Finding]]) -> list[Finding]:
    return [finding for batch in batches for finding in batch]


@pytest.mark.parametrize("size", [37, 700])
def test_fits_in_a_thread_find_what_inline_fits_find_in_the_same_order(size):
    events = log()
    inline = flat(feed(PredictionLogMonitor(CONFIG), events, size))
    with ThreadPoolExecutor(1) as thread:
        ordered = flat(
            feed(PredictionLogMonitor(CONFIG, executor=OrderedFits(thread)), events, size)
        )
    assert any(f.kind == MULTIVARIATE_DRIFT for f in inline), "the shift must reach the classifier"
    assert ordered == inline


def test_a_fit_still_running_holds_back_what_follows_until_it_is_in():
    events = log()
    inline = feed(PredictionLogMonitor(CONFIG), events, 150)
    thread = SlowThread()
    monitor = PredictionLogMonitor(CONFIG, executor=OrderedFits(thread))
    held: list[list[Finding]] = []
    for s in range(0, len(events), 150):
        held.append(monitor.process(events[s : s + 150]))
        if s // 150 % 4 == 3:
            thread.finish_all()  # the thread catches up now and then
    held.append(monitor.settle())
    assert flat(held) == flat(inline)
    # The classifier's findings came later than inline: everything after them waited.
    first = next(
        k for k, batch in enumerate(inline) if any(f.kind == MULTIVARIATE_DRIFT for f in batch)
    )
    assert sum(map(len, held[: first + 1])) < sum(map(len, inline[: first + 1]))


def test_a_new_version_takes_the_classifier_over_as_the_last_fit_left_it():
    # No fit finishes on its own: the new version's takeover (and each next fit) waits for it.
    events = log(version_at=1510)
    inline = flat(feed(PredictionLogMonitor(CONFIG), events, 60))
    ordered = flat(
        feed(PredictionLogMonitor(CONFIG, executor=OrderedFits(SlowThread())), events, 60)
    )
    assert ordered == inline
    assert any(f.kind == MULTIVARIATE_DRIFT and f.model_version == "8" for f in ordered)


def test_a_classifier_refused_in_the_thread_is_disabled_where_inline_disables_it(
    monkeypatch, caplog
):
    prepare = DomainClassifier.prepare
    calls = {"n": 0}

    def refused_on_the_third(self: DomainClassifier) -> Callable[[], Any] | None:
        job = prepare(self)
        calls["n"] += 1
        if calls["n"] % 3 or job is None:
            return job

        def refuse() -> Any:
            raise ValueError("scikit-learn says no")

        return refuse

    monkeypatch.setattr(DomainClassifier, "prepare", refused_on_the_third)
    events = log()
    inline = flat(feed(PredictionLogMonitor(CONFIG), events, 120))
    calls["n"] = 0
    ordered = flat(
        feed(PredictionLogMonitor(CONFIG, executor=OrderedFits(SlowThread())), events, 120)
    )
    assert "domain classifier disabled" in caplog.text
    assert ordered == inline


def test_replay_predictions_prints_what_inline_fits_find():
    events = log()
    batching = Batching(window_s=50.0, max_events=400)
    inline = PredictionLogMonitor(CONFIG)
    expected = [
        (f.timestamp, f.kind, f.feature, round(f.score, 6), f.message)
        for batch in prediction_batches(events, lambda e: isinstance(e, Label), inline, batching)
        for f in inline.process(batch)
        if not f.cleared
    ]
    printed = [
        (d["timestamp"], d["kind"], d["feature"], d["score"], d["message"])
        for d in replay_predictions(events, CONFIG, batching)
    ]
    assert any(kind == MULTIVARIATE_DRIFT for _, kind, *_ in printed)
    assert printed == expected

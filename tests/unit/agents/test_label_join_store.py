"""Label joins survive restarts: waiting predictions checkpointed in parts, read back in order."""

import logging

import pytest

from agents.kafka.detector_store import DetectorStore
from agents.kafka.label_join_store import LabelJoinStore
from agents.pipelines.events import LabelEvent
from detectors.monitor.label_join import LabelJoin, Pending
from fireline.errors import DetectorError
from tests.unit.agents.test_pipeline import FakeTable
from tests.unit.agents.test_prediction_pipeline import pipeline, predictions


def join_of(n: int) -> LabelJoin:
    join = LabelJoin()
    for i in range(n):
        prediction: float | str | None = [0.25, "fraud", None][i % 3]
        join.add(f"p-{i}", Pending(str(7 + i % 2), prediction, 1000.0 + i))
    return join


def waiting(join: LabelJoin) -> list[tuple[str, Pending]]:
    return [(f"p-{i}", p) for i in range(10_000) if (p := join.match(f"p-{i}", 0.0)) is not None]


def test_snapshots__cut_in_parts_and_restored_in_order():
    parts = list(join_of(25).snapshots(10))
    assert [len(p["ids"]) for p in parts] == [10, 10, 5]
    restored = LabelJoin()
    assert sum(restored.restore(p) for p in parts) == 25
    assert waiting(restored) == waiting(join_of(25))
    assert list(LabelJoin().snapshots(10)) == [
        {"ids": [], "versions": [], "predictions": [], "timestamps": []}
    ]


@pytest.mark.parametrize(
    ("snapshot", "problem"),
    [
        ({"ids": ["p-1"], "versions": ["7"], "predictions": [0.5]}, "no list 'timestamps'"),
        (
            {"ids": ["p-1"], "versions": ["7"], "predictions": [], "timestamps": [1.0]},
            "differ in length",
        ),
        (
            {"ids": ["p-1"], "versions": [7], "predictions": [0.5], "timestamps": [1.0]},
            "row 0 has a wrong type",
        ),
    ],
)
def test_restore__a_snapshot_that_does_not_fit_is_refused_naming_why(snapshot, problem):
    with pytest.raises(DetectorError, match=problem):
        LabelJoin().restore(snapshot)


def test_store__a_join_larger_than_a_part_comes_back_whole_and_a_bad_part_is_skipped(caplog):
    table = FakeTable()
    store = LabelJoinStore(DetectorStore(table), part_size=10)
    assert store.save({"fraud": join_of(25)}, {"fraud": 3}) == 1
    assert table.sent == [(3, f"labels|fraud|{n}".encode()) for n in range(3)] + [
        (3, b"labels|fraud")
    ]
    restored = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert restored is not None and waiting(restored) == waiting(join_of(25))
    assert store.load("other", max_pending=100, max_wait_s=60.0) is None

    table.data[b"labels|fraud|1"] = table.data[b"labels|fraud"]  # a part that is not one
    with caplog.at_level(logging.WARNING):
        partial = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert partial is not None and len(partial) == 15
    assert "label join of fraud: part 1 unreadable" in caplog.text


def test_pipeline__labels_after_a_restart_find_the_predictions_made_before_it():
    table = FakeTable()
    first = pipeline(DetectorStore(table))
    first.process(predictions(300, 0, "7", 0.0, seed=1), partition=1)
    first.checkpoint()
    labels = [
        LabelEvent(timestamp=1795255300.0, model="fraud", prediction_id=f"p-{i}", label=0)
        for i in range(300)
    ]

    restarted = pipeline(DetectorStore(table))
    restarted.process(labels, partition=1)
    assert restarted.take_label_counts() == {("fraud", "matched"): 300}
    monitor = restarted.monitor.monitor("fraud", "7")
    assert monitor is not None  # resumed from its checkpoint by the labels alone
    # The monitor (it saw outcomes), the emptied join and the version comparison (it saw them too).
    assert restarted.checkpoint() == 3
    assert len(LabelJoinStore(DetectorStore(table)).load("fraud", 10, 60.0) or []) == 0

    unsaved = pipeline()
    unsaved.process(labels)
    assert unsaved.take_label_counts() == {}  # no join at all: nothing to match against

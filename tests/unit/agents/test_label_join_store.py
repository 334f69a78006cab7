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


def join_of(n: int, segment_size: int = 10) -> LabelJoin:
    join = LabelJoin(segment_size=segment_size)
    for i in range(n):
        prediction: float | str | None = [0.25, "fraud", None][i % 3]
        join.add(f"p-{i}", Pending(str(7 + i % 2), prediction, 1000.0 + i))
    return join


def waiting(join: LabelJoin) -> list[tuple[str, Pending]]:
    return [(f"p-{i}", p) for i in range(10_000) if (p := join.match(f"p-{i}", 0.0)) is not None]


def test_segments__by_arrival_and_restored_under_their_numbers():
    join = join_of(25)
    assert join.segments() == [0, 1, 2] and join.take_changed() == {0, 1, 2}
    assert [len(join.segment(n)["ids"]) for n in join.segments()] == [10, 10, 5]
    assert join.segment(3) is None
    restored = LabelJoin(segment_size=10)
    assert sum(restored.restore(join.segment(n), n) for n in join.segments()) == 25
    assert restored.take_changed() == set()  # saved as they are: nothing to rewrite
    restored.add("new", Pending("7", 0.5, 2000.0))
    assert restored.segments() == [0, 1, 2, 3]  # segment 2 was saved as it was: not refilled
    assert waiting(restored) == waiting(join_of(25))
    with pytest.raises(DetectorError, match="segment 1 is not newer"):
        restored.restore(join_of(25).segment(1), 1)


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
    join = LabelJoin()
    with pytest.raises(DetectorError, match=problem):
        join.restore(snapshot)
    assert len(join) == 0  # nothing of it half-added


def test_store__a_join_larger_than_a_segment_comes_back_whole_and_a_bad_one_is_skipped(caplog):
    table = FakeTable()
    store = LabelJoinStore(DetectorStore(table))
    assert store.save({"fraud": join_of(25)}, {"fraud": 3}) == 1
    assert table.sent == [(3, f"labels|fraud|s{n}".encode()) for n in range(3)] + [
        (3, b"labels|fraud")
    ]
    restored = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert restored is not None and waiting(restored) == waiting(join_of(25))
    assert store.load("other", max_pending=100, max_wait_s=60.0) is None

    table.data[b"labels|fraud|s1"] = table.data[b"labels|fraud"]  # a segment that is not one
    with caplog.at_level(logging.WARNING):
        partial = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert partial is not None and len(partial) == 15
    assert "label join of fraud: labels|fraud|s1 unreadable" in caplog.text


def test_store__a_checkpoint_writes_only_the_changed_segments_and_deletes_the_emptied():
    table = FakeTable()
    store = LabelJoinStore(DetectorStore(table))
    join = join_of(25)
    store.save({"fraud": join}, {"fraud": 0})
    table.sent.clear()
    join.add("p-25", Pending("7", 0.5, 1025.0))  # into the newest segment
    join.match("p-3", 0.0)  # out of the oldest
    store.save({"fraud": join}, {"fraud": 0})
    assert table.sent == [(0, b"labels|fraud|s0"), (0, b"labels|fraud|s2"), (0, b"labels|fraud")]
    table.sent.clear()
    for i in range(10):
        join.match(f"p-{i}", 0.0)  # the oldest segment empties
    store.save({"fraud": join}, {"fraud": 0})
    assert table.sent == [(0, b"labels|fraud|s0"), (0, b"labels|fraud")]  # a tombstone, the head
    assert b"labels|fraud|s0" not in table.data
    restored = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert restored is not None and restored.items() == join.items()


def test_store__a_join_saved_whole_in_parts_by_an_earlier_release_is_read_then_replaced():
    table = FakeTable()
    old = DetectorStore(table)
    everything = join_of(25).items()
    parts = [everything[:10], everything[10:20], everything[20:]]
    columns = [
        {
            "ids": [i for i, _ in part],
            "versions": [p.model_version for _, p in part],
            "predictions": [p.prediction for _, p in part],
            "timestamps": [p.timestamp for _, p in part],
        }
        for part in parts
    ]
    old.save(
        {"labels|fraud": {"parts": 3}, **{f"labels|fraud|{n}": c for n, c in enumerate(columns)}},
        {"labels|fraud": 1, **{f"labels|fraud|{n}": 1 for n in range(3)}},
    )
    store = LabelJoinStore(DetectorStore(table))
    restored = store.load("fraud", max_pending=100, max_wait_s=60.0)
    assert restored is not None and restored.items() == everything
    table.sent.clear()
    store.save({"fraud": restored}, {"fraud": 1})
    assert [key for _, key in table.sent] == [
        *(f"labels|fraud|{n}".encode() for n in range(3)),  # the old parts deleted
        b"labels|fraud|s0",  # everything in the new format
        b"labels|fraud",
    ]
    again = LabelJoinStore(DetectorStore(table)).load("fraud", max_pending=100, max_wait_s=60.0)
    assert again is not None and again.items() == everything


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

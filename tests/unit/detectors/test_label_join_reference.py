"""LabelJoin in segments behaves as one queue of waiting predictions, checkpointed or not."""

from collections import OrderedDict

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.monitor.label_join import LabelJoin, Pending


class Reference:
    """The join as one ordered dict (what LabelJoin was before it kept segments)."""

    def __init__(self, max_pending: int, max_wait_s: float) -> None:
        self.max_pending, self.max_wait_s = max_pending, max_wait_s
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.expired = self.matched = self.unmatched = 0

    def add(self, prediction_id: str, pending: Pending) -> None:
        self.pending[prediction_id] = pending
        self.pending.move_to_end(prediction_id)
        if len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.expired += 1

    def match(self, prediction_id: str, now: float) -> Pending | None:
        while self.pending and next(iter(self.pending.values())).timestamp < now - self.max_wait_s:
            self.pending.popitem(last=False)
            self.expired += 1
        found = self.pending.pop(prediction_id, None)
        if found is None:
            self.unmatched += 1
        else:
            self.matched += 1
        return found


ids = st.integers(0, 40).map(lambda i: f"p{i}")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(ids, min_size=1, max_size=12)),
        st.tuples(st.just("match"), st.lists(ids, min_size=1, max_size=6)),
        st.tuples(st.just("checkpoint"), st.just([])),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    operations,
    st.integers(1, 30),
    st.integers(1, 8),
    st.floats(1.0, 50.0),
)
def test_segments_are_one_queue(steps, max_pending, segment_size, max_wait_s):
    join = LabelJoin(max_pending, max_wait_s, segment_size=segment_size)
    reference = Reference(max_pending, max_wait_s)
    clock = 0.0
    for kind, names in steps:
        if kind == "add":
            batch = []
            for _ in names:
                clock += 1.0
                batch.append(Pending("7", clock, clock))
            join.add_many(names, batch)
            for name, pending in zip(names, batch, strict=True):
                reference.add(name, pending)
        elif kind == "match":
            for name in names:
                assert join.match(name, clock) == reference.match(name, clock)
        else:  # saved segment by segment, as the store does, and read back
            restored = LabelJoin(max_pending, max_wait_s, segment_size=segment_size)
            join.take_changed()
            for number in join.segments():
                segment = join.segment(number)
                assert segment is not None and len(segment["ids"]) <= segment_size
                restored.restore(segment, number)
            assert restored.take_changed() == set()
            restored.expired, restored.matched, restored.unmatched = (
                join.expired,
                join.matched,
                join.unmatched,
            )
            join = restored
        assert join.items() == list(reference.pending.items())
        assert len(join) == len(reference.pending)
    assert join.take_counts() == (reference.matched, reference.unmatched, reference.expired)

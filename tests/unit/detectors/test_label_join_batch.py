"""LabelJoin.add_many waits the predictions of a batch as adding them one by one does."""

import random

import pytest

from detectors.monitor.label_join import LabelJoin, Pending


@pytest.mark.parametrize("seed", range(30))
def test_add_many_is_add_one_by_one(seed):
    rng = random.Random(seed)
    cap = rng.choice([5, 40, 1000])
    size = rng.choice([1, 7, 10_000])
    one, many = LabelJoin(cap, segment_size=size), LabelJoin(cap, segment_size=size)
    for _ in range(6):
        # ids reused within a batch and across batches, batches past the cap or not
        ids = [f"p{rng.randrange(60)}" for _ in range(rng.randrange(1, 30))]
        pending = [Pending("7", rng.random(), float(i)) for i in range(len(ids))]
        for prediction_id, p in zip(ids, pending, strict=True):
            one.add(prediction_id, p)
        many.add_many(ids, pending)
        assert many.items() == one.items()
        assert many.take_counts() == one.take_counts()
        assert many.segments() == one.segments()
        assert many.take_changed() == one.take_changed()


def test_add_many_of_new_ids_under_the_cap_keeps_their_order():
    join = LabelJoin(max_pending=10)
    join.add("a", Pending("7", 0.1, 1.0))
    join.add_many(["b", "c"], [Pending("7", 0.2, 2.0), Pending("7", 0.3, 3.0)])
    assert [i for i, _ in join.items()] == ["a", "b", "c"]

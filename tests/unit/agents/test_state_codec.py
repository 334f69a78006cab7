"""Detector checkpoints are data: every detector round-trips, and nothing in a record runs."""

from __future__ import annotations

import logging
import os
import pickle
import zlib
from collections import Counter as CollectionsCounter
from collections import deque
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter

from agents.kafka import state_codec
from agents.kafka.detector_store import DetectorStore
from detectors import LatencySpike
from detectors.base import Detector
from detectors.monitor.model_monitor import ModelMonitor, MonitorConfig
from detectors.monitor.records import Prediction
from fireline.errors import StateFormatError
from tests.factories import detector_classes, detector_stream, make_incident
from tests.unit.agents.test_pipeline import FakeTable

CASES = [(cls, params) for cls in detector_classes() for params in cls.conformance_params()]


def outputs(detector: Detector[Any]) -> tuple[Any, ...]:
    return (detector.alarm, detector.score, detector.seen, list(detector.changes))


@pytest.mark.parametrize(("cls", "params"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_every_detector_round_trips_and_then_behaves_identically(cls, params):
    stream = detector_stream(cls, 4000, seed=3)
    times = 1.8e9 + 60.0 * np.arange(stream.size)
    original = cls(**params).update(stream[:1500], times[:1500])
    restored = state_codec.decode(state_codec.encode(original))
    assert type(restored) is cls and restored is not original
    assert restored.params == original.params
    again = state_codec.decode(state_codec.encode(original))
    assert again.params is restored.params  # one instance for every series restored
    assert outputs(restored) == outputs(original)
    for start in range(1500, stream.size, 250):
        chunk = slice(start, start + 250)
        original.update(stream[chunk], times[chunk])
        restored.update(stream[chunk], times[chunk])
        assert outputs(restored) == outputs(original)
    assert original.seen > 1500


def predictions(n: int, start: int, shift: float) -> list[Prediction]:
    rng = np.random.default_rng(start)
    return [
        Prediction(
            timestamp=1.8e9 + (start + i) * 0.1,
            model="fraud",
            model_version="7",
            prediction_id=f"p-{start + i}",
            features={
                "amount": float(rng.normal(100 + shift, 10)),
                "country": str(rng.choice(["DE", "FR", "NL"] if shift == 0 else ["DE", "US"])),
                "age": None if i % 7 == 0 else float(rng.integers(18, 90)),
            },
            prediction=float(rng.uniform()),
            latency_ms=float(rng.normal(45, 2)) if shift == 0 else 400.0,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("cut", [50, 700, 2000], ids=["warmup", "reference", "monitoring"])
def test_a_model_monitor_round_trips_in_every_phase(cut):
    config = MonitorConfig(
        warmup=100, reference_size=1000, window=200, step=50, classifier_every=400
    )
    stream = predictions(cut, 0, 0.0) + predictions(1200, cut, 25.0)
    original = ModelMonitor("fraud", "7", config)
    original.observe(stream[:cut])
    restored = state_codec.decode(state_codec.encode(original))
    assert isinstance(restored, ModelMonitor) and restored.phase == original.phase
    found = [original.observe(stream[cut:]), restored.observe(stream[cut:])]
    assert found[0] == found[1]
    assert cut < 2000 or found[0]  # monitoring: the shift is found, by both
    outcomes = ([0.0] * 150 + [1.0] * 150, [1.8e9 + i for i in range(300)])
    assert original.observe_outcomes(*outcomes) == restored.observe_outcomes(*outcomes)


def test_plain_values_round_trip_with_their_types():
    value = {
        "numbers": [1, -(2**70), 2**64 - 1, 0.5, float("inf"), True, None],
        ("a", 1): {frozenset({1, 2}), 3},
        "window": deque([1.0, 2.0], maxlen=5),
        "classes": CollectionsCounter({"fraud": 3, "ok": 1}),
        "arrays": [np.arange(6, dtype=np.int32).reshape(2, 3), np.array(["x", "yz"]), np.zeros(0)],
        "scalars": (np.float64(1.5), np.int64(-3), np.bool_(True)),
        b"raw": b"\x00\xff",
    }
    restored = state_codec.decode(state_codec.encode(value))
    assert isinstance(restored, dict)
    assert restored["numbers"] == value["numbers"]
    assert restored[("a", 1)] == value[("a", 1)]
    assert restored["window"] == value["window"] and restored["window"].maxlen == 5
    assert type(restored["classes"]) is CollectionsCounter
    assert restored["classes"] == value["classes"]
    for got, sent in zip(restored["arrays"], value["arrays"], strict=True):
        assert got.dtype == sent.dtype and got.shape == sent.shape and (got == sent).all()
        assert got.flags.writeable
    assert [type(s) for s in restored["scalars"]] == [np.float64, np.int64, np.bool_]
    assert restored["scalars"] == value["scalars"] and restored[b"raw"] == b"\x00\xff"
    assert np.isnan(state_codec.decode(state_codec.encode(float("nan"))))


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        (make_incident(), "fireline.incident:Incident: not a fireline state class"),
        (lambda: 0, "not a fireline state class"),
        (np.array([object()]), "cannot save an array of dtype object"),
    ],
    ids=["foreign class", "function", "object array"],
)
def test_what_is_not_state_cannot_be_saved(value, refusal):
    with pytest.raises(StateFormatError, match=refusal):
        state_codec.encode(value)


class RunsCode:
    """Unpickling this runs a shell command: what a rogue writer to the topic would send."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def forged(*ext: Any) -> bytes:
    """A record in the state format whose tree is ``ExtType(code, packed payload)``."""
    code, payload = ext
    tree = msgpack.ExtType(code, msgpack.packb(payload, use_bin_type=True))
    return state_codec.HEADER + zlib.compress(msgpack.packb(tree))


OBJECT = 7  # the object extension's code, as the format defines it


def test_a_record_crafted_to_run_code_is_unreadable_and_runs_nothing(tmp_path, caplog):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(RunsCode(marker))
    table = FakeTable()
    table.data[b"latency_ms"] = zlib.compress(payload, 1)  # what an older release would read
    table.data[b"plain"] = payload
    table.data[b"in-format"] = state_codec.HEADER + zlib.compress(payload)
    registry = CollectorRegistry()
    unreadable = Counter("unreadable", "", registry=registry)
    store = DetectorStore(table, unreadable=unreadable)
    with caplog.at_level(logging.WARNING):
        assert [store.load(key) for key in ("latency_ms", "plain", "in-format")] == [None] * 3
    assert not marker.exists()
    assert "unreadable state for latency_ms, re-warming" in caplog.text
    assert registry.get_sample_value("unreadable_total") == 3
    pickle.loads(payload)  # the control: the same bytes do run code when unpickled
    assert marker.exists()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (forged(OBJECT, ["posix:system", {}]), "class posix:system is not one fireline reads"),
        (forged(OBJECT, ["builtins:eval", {}]), "not one fireline reads back"),
        (forged(OBJECT, ["detectors.base:np", {}]), "is not a class defined there"),
        (forged(OBJECT, ["detectors.nothing:X", {}]), "unknown to this release"),
        (forged(OBJECT, ["detectors.base:Detector.reset", {}]), "not a class defined there"),
        (forged(OBJECT, ["detectors.base:AlarmChange", {"__class__": 1}]), "identifiers"),
        (forged(99, []), "unknown extension type 99"),
        (b"FLS\x00" + zlib.compress(msgpack.packb(1)), "format version 0; this fireline reads 2"),
        (state_codec.HEADER + zlib.compress(b"0123456789")[:-3], "truncated record"),
        (state_codec.HEADER + zlib.compress(bytes(40_000_000)), "larger than"),
    ],
    ids=[
        "os function",
        "builtin",
        "module attribute",
        "unknown module",
        "method",
        "dunder attribute",
        "unknown extension",
        "old version",
        "truncated",
        "zip bomb",
    ],
)
def test_records_outside_the_format_are_refused_with_the_reason(record, reason):
    with pytest.raises(StateFormatError, match=reason):
        state_codec.decode(record)


def test_an_object_referenced_twice_is_one_object_again_when_read_back():
    shared = LatencySpike().update(detector_stream(LatencySpike, 50))
    other = LatencySpike()
    restored = state_codec.decode(state_codec.encode({"all": [shared, other], "some": [shared]}))

    assert isinstance(restored, dict)
    assert restored["some"][0] is restored["all"][0]  # as in memory: one detector
    assert restored["all"][1] is not restored["all"][0]
    assert outputs(restored["some"][0]) == outputs(shared)


def test_a_reference_to_an_object_not_read_yet_is_refused():
    ref = msgpack.ExtType(11, msgpack.packb(3))  # _REF to an object that never came
    record = state_codec.HEADER + zlib.compress(msgpack.packb([ref]))
    with pytest.raises(StateFormatError, match="reference to object 3"):
        state_codec.decode(record)


def test_state_saved_by_a_release_with_fewer_attributes_is_refused():
    detector = LatencySpike().update(detector_stream(LatencySpike, 300))
    name = f"{LatencySpike.__module__}:{LatencySpike.__qualname__}"
    params_cls = type(detector.params)
    params = msgpack.ExtType(9, msgpack.packb([f"{params_cls.__module__}:LatencySpikeParams", []]))
    state = {"params": params, "_alarm": False, "_score": 0.0, "_seen": 1, "_changes": []}
    with pytest.raises(StateFormatError, match=r"saved without .*an older release"):
        state_codec.decode(forged(OBJECT, [name, state]))


def test_the_store_skips_state_it_cannot_save_and_keeps_the_rest(caplog):
    table = FakeTable()
    store = DetectorStore(table)
    objects = {"bad": make_incident(), "good": LatencySpike()}
    assert store.save(objects, {"bad": 0, "good": 1}) == 1
    assert store.save(objects, {"bad": 0}) == 0
    assert list(table.data) == [b"good"] and table.sent == [(1, b"good")]
    assert caplog.text.count("state of bad cannot be saved") == 1  # once per key
    assert isinstance(store.load("good"), LatencySpike)


def test_serialized_sizes_stay_under_the_checkpoint_limit(capsys):
    sizes = {}
    for cls, params in CASES:
        stream = detector_stream(cls, 4000, seed=1)
        detector = cls(**params).update(stream, 1.8e9 + 60.0 * np.arange(stream.size))
        sizes[repr(detector)] = len(state_codec.encode(detector))
    assert max(sizes.values()) < 100_000
    with capsys.disabled():
        print("\nstate bytes:", {name.split("(")[0]: size for name, size in sizes.items()})


def test_the_store_seals_each_partition_it_wrote_once_after_a_checkpoint():
    table = FakeTable()
    store = DetectorStore(table)
    store.save({"a": LatencySpike(), "b": LatencySpike()}, {"a": 1, "b": 3})
    assert store.seal() == 2
    assert table.sent[-2:] == [(1, b"~seal"), (3, b"~seal")]
    assert store.seal() == 0  # nothing written since
    assert store.load("~seal") is None  # never read back as a detector


@pytest.mark.parametrize("size", [0, 1, 1_000, state_codec.STORE_BELOW - 10])
def test_a_small_state_is_stored_uncompressed_and_any_zlib_reads_it(size):
    value = bytes(size)  # zeros: compressed, they would shrink to almost nothing
    record = state_codec.encode(value)
    stream = record[len(state_codec.HEADER) :]
    assert size < len(stream) < size + 20  # a stored block: the bytes themselves, framed
    inflater = zlib.decompressobj()  # what this and older releases read it with
    assert msgpack.unpackb(inflater.decompress(stream)) == value and inflater.eof
    assert state_codec.decode(record) == value


def test_a_large_state_is_compressed():
    value = bytes(10 * state_codec.STORE_BELOW)
    record = state_codec.encode(value)
    assert len(record) < state_codec.STORE_BELOW
    assert state_codec.decode(record) == value


def test_a_stored_record_with_a_flipped_byte_is_refused():
    record = bytearray(state_codec.encode([1.5, 2.5, "series"]))
    record[-6] ^= 0xFF  # inside the data: the Adler-32 checksum no longer matches
    with pytest.raises(StateFormatError):
        state_codec.decode(bytes(record))


def test_parameter_models_packed_once_each_still_read_back_as_their_own_values():
    narrow, wide = LatencySpike(window=50), LatencySpike(window=200)
    for _ in range(2):  # the second time from the packed models kept by identity
        restored = [state_codec.decode(state_codec.encode(d)) for d in (narrow, wide)]
        assert [d.params.window for d in restored] == [50, 200]
    shared = LatencySpike(window=50)
    assert state_codec.encode(shared) == state_codec.encode(LatencySpike(window=50))

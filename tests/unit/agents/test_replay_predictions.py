import json

import numpy as np
import pytest

from agents.cli.main import main
from agents.cli.replay import read_prediction_log, replay_predictions
from detectors.monitor.model_monitor import MonitorConfig
from fireline.errors import ConfigError

CONFIG = MonitorConfig(warmup=100, reference_size=1000, classifier_every=0)


def write_log(path, n=4000, shift_at=2500, version_at=None, labels=True, seed=1):
    """A fraud model's log: amount shifts by 1 sigma at `shift_at`; labels 10 events late."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        version = "8" if version_at is not None and i >= version_at else "7"
        amount = rng.normal(100 + (20 if i >= shift_at else 0), 20)
        score = float(rng.random())
        lines.append(
            {
                "timestamp": 1795255200.0 + i,
                "model": "fraud",
                "model_version": version,
                "prediction_id": f"p-{i}",
                "features": {"amount": round(amount, 3), "country": str(rng.choice(["DE", "FR"]))},
                "prediction": score,
                "latency_ms": round(float(rng.normal(20, 2)), 3),
            }
        )
        if labels and i >= 10:
            lines.append(
                {
                    "timestamp": 1795255200.0 + i + 0.5,
                    "model": "fraud",
                    "prediction_id": f"p-{i - 10}",
                    "label": int(rng.random() < 0.5),
                }
            )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def test_replay_predictions__finds_the_shift_of_the_feature_that_moved(tmp_path):
    source = tmp_path / "log.jsonl"
    write_log(source)
    found = list(replay_predictions(read_prediction_log(source), CONFIG))
    assert found, "a 1-sigma shift must be detected"
    assert {d["kind"] for d in found} == {"covariate_drift"}
    assert {d["feature"] for d in found} == {"amount"}
    first = min(d["timestamp"] for d in found)
    assert 1795255200.0 + 2500 < first < 1795255200.0 + 3000
    assert all(0 <= d["score"] <= 1 and d["message"] for d in found)


def test_replay_predictions__stationary_log_raises_nothing(tmp_path):
    source = tmp_path / "log.jsonl"
    write_log(source, n=6000, shift_at=10**9)
    assert list(replay_predictions(read_prediction_log(source), CONFIG)) == []


def test_replay_predictions__version_change_is_its_own_event_and_restarts_warmup(tmp_path):
    source = tmp_path / "log.jsonl"
    write_log(source, n=3000, shift_at=10**9, version_at=1500)
    found = list(replay_predictions(read_prediction_log(source), CONFIG))
    assert [(d["kind"], d["model_version"], d["timestamp"]) for d in found] == [
        ("model_version_change", "8", 1795255200.0 + 1500)
    ]
    assert "version 7 -> 8" in found[0]["message"]


def test_replay_predictions__error_rate_rise_from_labels_is_performance_drift(tmp_path):
    source = tmp_path / "log.jsonl"
    rows = []
    rng = np.random.default_rng(3)
    for i in range(5000):
        score = float(rng.random())
        wrong_rate = 0.1 if i < 3500 else 0.4
        label = int((score >= 0.5) != (rng.random() < wrong_rate))
        rows.append(
            {
                "timestamp": 100.0 + i,
                "model": "m",
                "model_version": "1",
                "prediction_id": f"p{i}",
                "features": {"x": float(rng.normal())},
                "prediction": score,
            }
        )
        rows.append(
            {"timestamp": 100.5 + i, "model": "m", "prediction_id": f"p{i}", "label": label}
        )
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = list(replay_predictions(read_prediction_log(source), CONFIG))
    assert [d["kind"] for d in found] == ["performance_drift"]
    assert 3500 < found[0]["timestamp"] - 100 < 4200


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"log.jsonl:2: not_json: not JSON"),
        ('{"timestamp": 1, "model": "m", "prediction_id": "p", "label": 1.5, "x": NaN}', None),
        (
            '{"timestamp": 1, "model": "m", "model_version": "1", "prediction_id": "p", "features": {"a": [1]}, "prediction": 1}',
            r"log.jsonl:2: wrong_type: PredictionEvent: features.a",
        ),
        (
            '{"timestamp": 1, "model": "m", "prediction_id": "p"}',
            r"log.jsonl:2: missing_field: PredictionEvent: model_version: Field required",
        ),
        (
            '{"timestamp": "yesterday", "model": "m", "prediction_id": "p", "label": 1}',
            r"log.jsonl:2: invalid_value: LabelEvent: timestamp",
        ),
    ],
)
def test_read_prediction_log__bad_line_names_file_line_and_reason(tmp_path, line, message):
    source = tmp_path / "log.jsonl"
    good = '{"timestamp": 1, "model": "m", "model_version": "1", "prediction_id": "p0", "features": {}, "prediction": 1}'
    source.write_text(good + "\n" + line + "\n")
    if message is None:  # a valid label with an unknown extra field (NaN is Python's JSON)
        assert len(list(read_prediction_log(source))) == 2
        return
    with pytest.raises(ConfigError, match=message):
        list(read_prediction_log(source))


def test_replay_predictions_cli__prints_json_lines(tmp_path, capsys):
    source = tmp_path / "log.jsonl"
    write_log(source, n=3000, version_at=1500, shift_at=10**9)
    assert main(["replay", "predictions", str(source)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["kind"] for line in lines] == ["model_version_change"]
    assert set(lines[0]) == {
        "timestamp",
        "model",
        "model_version",
        "kind",
        "feature",
        "score",
        "message",
    }


def test_replay_predictions_cli__bad_file_exits_2(tmp_path, capsys):
    source = tmp_path / "log.jsonl"
    source.write_text("{}\n")
    assert main(["replay", "predictions", str(source)]) == 2
    assert "log.jsonl:1: missing_field" in capsys.readouterr().err


def test_replay_predictions__a_worse_version_is_a_version_regression_line(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for i in range(5000):
        version = "8" if i >= 3000 else "7"
        positive = bool(rng.random() < 0.2)
        confidence = 1.0 - float(rng.uniform(0.0, 0.4 if version == "8" else 0.02))
        rows.append(
            {
                "timestamp": 100.0 + i,
                "model": "fraud",
                "model_version": version,
                "prediction_id": f"p{i}",
                "features": {"x": float(rng.normal())},
                "prediction": confidence if positive else 1.0 - confidence,
            }
        )
    source = tmp_path / "log.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = list(replay_predictions(read_prediction_log(source), CONFIG))
    assert [(d["kind"], d["model_version"]) for d in found] == [
        ("model_version_change", "8"),
        ("version_regression", "8"),
    ]
    assert found[1]["message"].startswith("fraud v8 is worse than v7: ")
    assert 3000 < found[1]["timestamp"] - 100 < 4000


def test_replay_predictions_cli__fits_in_a_child_print_the_same_lines(tmp_path, capsys):
    # Plumbing: with the classifier's tests (which this short log does not reach)
    # the outputs are compared in tests/unit/agents/test_classifier_process.py.
    source = tmp_path / "log.jsonl"
    write_log(source, n=3000, version_at=1500)
    assert main(["replay", "predictions", str(source)]) == 0
    inline = capsys.readouterr().out
    assert main(["replay", "predictions", str(source), "--fit-in-child"]) == 0
    assert capsys.readouterr().out == inline
    assert "model_version_change" in inline

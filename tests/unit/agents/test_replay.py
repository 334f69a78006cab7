import csv
import io
import json

import numpy as np
import pytest

from agents.cli.main import main
from agents.cli.replay import read_metric_csv, replay_values
from agents.settings import DetectionSettings
from fireline.errors import ConfigError


def write_series(path, values):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i, value in enumerate(values):
            writer.writerow([f"2026-11-21 10:{i // 60:02d}:{i % 60:02d}", value])


def test_replay_cli__scores_every_row_and_flags_the_spike(tmp_path):
    rng = np.random.default_rng(1)
    values = [
        round(float(v), 2) for v in [*rng.normal(50, 2, 800), *[400.0] * 5, *rng.normal(50, 2, 20)]
    ]  # 800 points: early on, the detector's ranges are still being learnt (and it rests)
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(source, values)
    assert main(["replay", "metrics", str(source), "--out", str(out)]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(values)
    assert [float(r["value"]) for r in rows] == values
    alarms = [i for i, r in enumerate(rows) if r["alarm"] == "1"]
    assert alarms[0] == 802  # the third spiking point, as in the service
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    assert float(rows[800]["anomaly_score"]) > 0.9 > float(rows[799]["anomaly_score"])


def test_replay__score_uses_only_the_past():
    rng = np.random.default_rng(2)
    values = [float(v) for v in rng.normal(50, 2, 400)]
    full = [r.anomaly_score for r in replay_values([""] * 400, values, DetectionSettings())]
    prefix = [r.anomaly_score for r in replay_values([""] * 250, values[:250], DetectionSettings())]
    assert full[:250] == prefix


def test_read_metric_csv__bad_value_names_the_line(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("timestamp,value\n2026-11-21 10:00:00,1.5\n2026-11-21 10:00:01,fast\n")
    with pytest.raises(ConfigError, match=r"bad.csv:3: value 'fast' is not a number"):
        read_metric_csv(source)


def test_read_metric_csv__missing_columns(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("time,v\n1,2\n")
    with pytest.raises(
        ConfigError, match=r"bad.csv:1: expected a header with columns timestamp,value"
    ):
        read_metric_csv(source)


def test_replay_cli__writes_to_stdout(tmp_path, capsys):
    source = tmp_path / "in.csv"
    write_series(source, [1.0, 2.0, 3.0])
    assert main(["replay", "metrics", str(source)]) == 0
    out = capsys.readouterr().out
    assert next(iter(csv.reader(io.StringIO(out)))) == [
        "timestamp",
        "value",
        "anomaly_score",
        "alarm",
    ]
    assert len(out.splitlines()) == 4


def write_metric_events(path, rng, series=40, points=400, spike=None):
    """JSON lines of latency and CPU samples of many services, interleaved."""
    lines = []
    for i in range(points):
        for s in range(series):
            name = "latency_ms" if s % 2 else "cpu_utilization"
            value = float(rng.normal(50, 2))
            if spike is not None and s == spike and i >= points - 10:
                value *= 8
            lines.append(
                {
                    "timestamp": 1795255200.0 + i,
                    "name": name,
                    "value": round(value, 2),
                    "labels": {"service": f"svc-{s}"},
                }
            )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_replay_metrics_jsonl__routes_each_series_by_name_as_the_worker_does(tmp_path, capsys):
    source = tmp_path / "metrics.jsonl"
    write_metric_events(source, np.random.default_rng(4), spike=7)
    assert main(["replay", "metrics", str(source), "--no-progress"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found, "an 8x latency spike must be detected"
    latency = [d for d in found if d["series"].startswith("latency_ms")]
    assert {(d["series"], d["kind"], d["detector"]) for d in latency} == {
        ("latency_ms{service=svc-7}", "latency_spike", "LatencySpike")
    }
    assert all(d["timestamp"] >= 1795255200.0 + 390 for d in latency)
    # Every other metric goes to the default detector (which, on 400 points of white
    # noise, may still be learning what normal is).
    others = {(d["kind"], d["detector"]) for d in found if d not in latency}
    assert others <= {("metric_anomaly", "MetricEnsemble")}


def test_replay_metrics_jsonl__a_bad_line_names_file_and_line(tmp_path, capsys):
    source = tmp_path / "metrics.jsonl"
    source.write_text('{"timestamp": 1, "name": "x", "value": 1}\n{"timestamp": 2, "name": "x"}\n')
    assert main(["replay", "metrics", str(source)]) == 2
    assert "metrics.jsonl:2: missing_field" in capsys.readouterr().err

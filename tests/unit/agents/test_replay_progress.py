"""`fireline replay --progress`: the bar goes to stderr, the data to stdout untouched."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from agents.cli.main import main


def write_series(path: Path, rows: int) -> None:
    rng = random.Random(3)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i in range(rows):
            writer.writerow([i, round(rng.gauss(50, 2), 2)])


def write_predictions(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            event = {
                "timestamp": 1795255200.0 + i,
                "model": "fraud",
                "model_version": "7",
                "prediction_id": f"p-{i}",
                "features": {"amount": float(i % 50)},
                "prediction": 0.1,
            }
            handle.write(json.dumps(event) + "\n")


def test_replay_metrics__asked_for_the_bar_is_on_stderr_only(tmp_path, capsys):
    source = tmp_path / "in.csv"
    write_series(source, 300)
    assert main(["replay", "metrics", str(source), "--progress"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert len(rows) == 301 and rows[0] == ["timestamp", "value", "anomaly_score", "alarm"]
    assert "\r" not in captured.out
    assert captured.err.startswith("\rreplay metrics [")
    assert captured.err.endswith("100% 300/300 rows\n")


def test_replay__no_bar_when_stderr_is_not_a_terminal_or_when_refused(tmp_path, capsys):
    source = tmp_path / "in.csv"
    write_series(source, 50)
    assert main(["replay", "metrics", str(source)]) == 0  # capsys: not a terminal
    assert capsys.readouterr().err == ""
    assert main(["replay", "metrics", str(source), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_replay_predictions__the_bar_ends_before_the_summary_line(tmp_path, capsys):
    source, out = tmp_path / "log.jsonl", tmp_path / "detections.jsonl"
    write_predictions(source, 200)
    size_mb = source.stat().st_size / 1e6
    assert main(["replay", "predictions", str(source), "--out", str(out), "--progress"]) == 0
    bar, summary = capsys.readouterr().err.rsplit("\n", 2)[:2]
    assert bar.rstrip().endswith(f"100% {size_mb:.1f}/{size_mb:.1f} MB")
    assert summary == f"0 detection(s) written to {out}"

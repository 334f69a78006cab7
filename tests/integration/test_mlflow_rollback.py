"""rollback with provider mlflow against a real MLflow tracking server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.kafka.broker import free_port
from fireline.errors import ActionError
from fireline.incident import Incident
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.loader import load_file
from playbooks.registry import ActionResult
from tests.factories import make_incident
from tests.integration.mlflow_server import MlflowServer
from tests.integration.support import unique

ROOT = Path(__file__).parents[2]
SEED = ROOT / "deploy" / "mlflow" / "seed.py"


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server.start()
    finally:
        server.stop()


async def rollback(params: dict[str, Any], **incident: Any) -> ActionResult:
    registered = default_registry().get("rollback")
    validated = registered.params_model.model_validate({"provider": "mlflow", **params})
    return await registered.run(make_incident(**incident), validated, ActionContext())


async def test_rollback_mlflow__moves_champion_to_the_previous_version(mlflow):
    model = unique("fraud")
    mlflow.register(model, versions=3, alias="champion")
    result = await rollback({"tracking_uri": mlflow.url}, model=model, model_version="3")
    assert result == ActionResult(
        "rollback", ok=True, detail=f"{model}@champion: v3 → v2", target=model
    )
    assert mlflow.alias_version(model, "champion") == "2"


async def test_rollback_mlflow__a_redelivered_incident_does_not_roll_back_twice(mlflow):
    model = unique("fraud")
    mlflow.register(model, versions=3, alias="champion")
    first = await rollback({"tracking_uri": mlflow.url}, model=model, model_version="3")
    again = await rollback({"tracking_uri": mlflow.url}, model=model, model_version="3")
    assert first.ok and again.ok
    assert "is v2, not v3 as in the incident" in again.detail
    assert mlflow.alias_version(model, "champion") == "2"


async def test_rollback_mlflow__explicit_version_alias_and_env_uri(mlflow, monkeypatch):
    model = unique("fraud")
    mlflow.register(model, versions=4)
    mlflow.set_alias(model, "prod", 4)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.url)
    result = await rollback({"alias": "prod", "to_version": "1"}, model=model, model_version="4")
    assert result.ok, result.detail
    assert mlflow.alias_version(model, "prod") == "1"


async def test_rollback_mlflow__no_previous_version_fails_clearly(mlflow):
    model = unique("fraud")
    mlflow.register(model, versions=1, alias="champion")
    result = await rollback({"tracking_uri": mlflow.url}, model=model, model_version="1")
    assert not result.ok
    assert result.detail == f"{model}@champion is v1: no earlier version to roll back to"
    assert mlflow.alias_version(model, "champion") == "1"


async def test_rollback_mlflow__missing_alias_or_server_are_failed_results(mlflow):
    model = unique("fraud")
    mlflow.register(model, versions=2)
    no_alias = await rollback({"tracking_uri": mlflow.url}, model=model)
    assert not no_alias.ok
    assert no_alias.detail == (
        f"MLflow at {mlflow.url} failed reading alias champion of {model}: "
        "Registered model alias champion not found. (HTTP 400 INVALID_PARAMETER_VALUE)"
    )
    down = await rollback({"tracking_uri": f"http://127.0.0.1:{free_port()}"}, model=model)
    assert not down.ok
    assert "unreachable" in down.detail


async def test_rollback_mlflow__no_tracking_uri_is_an_action_error(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ActionError, match="set tracking_uri or the MLFLOW_TRACKING_URI"):
        await rollback({})


def seed(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """deploy/mlflow/seed.py as docker-compose runs it (its own process, stdlib only)."""
    return subprocess.run(
        [sys.executable, str(SEED), "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_seed__the_shipped_playbook_rolls_the_example_incident_back_on_it(
    mlflow, monkeypatch
):
    first = seed(mlflow.url)  # compose's defaults: fraud, 2 versions, champion
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "mlflow seed: created registered model fraud",
        "mlflow seed: registered fraud v1",
        "mlflow seed: registered fraud v2",
        "mlflow seed: fraud@champion → v2",
    ]
    assert mlflow.alias_version("fraud", "champion") == "2"

    playbook, problems = load_file(
        ROOT / "playbooks" / "library" / "prediction-drift-rollback.yaml", default_registry()
    )
    assert problems == [] and playbook is not None
    (step,) = [s for s in playbook.steps if s.action == "rollback"]
    incident = Incident.model_validate_json((ROOT / "docs/examples/incident.json").read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.url)  # as compose sets it
    result = await default_registry().get("rollback").run(incident, step.params, ActionContext())
    assert result == ActionResult(
        "rollback", ok=True, detail="fraud@champion: v2 → v1", target="fraud"
    )

    again = seed(mlflow.url)  # the next `docker compose up`: the rollback stays
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["mlflow seed: fraud@champion already points at v1"]
    assert mlflow.alias_version("fraud", "champion") == "1"
    versions = mlflow.call("GET", "model-versions/search", {"filter": "name='fraud'"})
    assert sorted(v["version"] for v in versions["model_versions"]) == ["1", "2"]


def test_seed__an_unreachable_server_is_one_line_and_exit_1():
    url = f"http://127.0.0.1:{free_port()}"
    result = seed(url, "--wait", "0")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mlflow seed: error: MLflow at {url} did not answer within 0 s: ")

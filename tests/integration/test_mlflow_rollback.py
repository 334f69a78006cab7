"""rollback with provider mlflow against a real MLflow tracking server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agents.kafka.broker import free_port
from fireline.errors import ActionError
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.registry import ActionResult
from tests.factories import make_incident
from tests.integration.mlflow_server import MlflowServer
from tests.integration.support import unique


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

"""The deployment files parse with the real tools (no Docker engine is needed)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (Debian package {package!r}; .ci/run installs it)"
    return path


@functools.cache
def compose_config() -> dict[str, Any]:
    """docker-compose.yml as docker-compose itself resolves it (paths made absolute)."""
    result = subprocess.run(
        [
            tool("docker-compose", "docker-compose"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Each mount's target and its source (a volume name or a host path)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):  # docker-compose v1: source:target[:mode]
            source, target = volume.split(":")[:2]
        else:  # Compose v2's long syntax
            source, target = volume["source"], volume["target"]
        found[target] = source
    return found


def test_compose__config_is_valid_and_wires_fireline_to_kafka():
    services = compose_config()["services"]
    assert set(services) == {
        "kafka",
        "fireline",
        "simulator",
        "prometheus",
        "grafana",
        "mlflow",
        "mlflow-seed",
    }
    assert services["fireline"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["fireline"]["environment"]["FIRELINE_BROKER_URL"] == "kafka://kafka:9092"


def test_compose__kafka_and_mlflow_write_to_their_volumes():
    config = compose_config()
    kafka, mlflow = config["services"]["kafka"], config["services"]["mlflow"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert mounts(kafka) == {log_dirs: "kafka-data"}  # the image's default is under /tmp
    assert kafka["environment"]["CLUSTER_ID"]  # fixed: a recreated container reopens the data
    assert mounts(mlflow) == {"/mlflow": "mlflow-data"}
    command = mlflow["command"]
    assert command[command.index("--backend-store-uri") + 1] == "sqlite:////mlflow/mlflow.db"
    assert command[command.index("--default-artifact-root") + 1] == "/mlflow/artifacts"
    assert {"kafka-data", "mlflow-data"} <= set(config["volumes"])


def test_compose__mlflow_is_seeded_with_the_alias_the_rollback_playbook_moves():
    from playbooks.actions import default_registry
    from playbooks.loader import load_file

    services = compose_config()["services"]
    seed = services["mlflow-seed"]
    assert seed["image"] == services["mlflow"]["image"]  # the same MLflow, its own Python
    assert seed["depends_on"] == {"mlflow": {"condition": "service_healthy"}}
    assert "healthcheck" in services["mlflow"]
    assert mounts(seed) == {"/seed": str(ROOT / "deploy" / "mlflow")}
    command = seed["command"]
    assert command[:2] == ["python", "/seed/seed.py"]
    assert (ROOT / "deploy" / "mlflow" / "seed.py").is_file()
    option = {name: command[command.index(name) + 1] for name in command if name.startswith("--")}
    assert option == {
        "--url": services["fireline"]["environment"]["MLFLOW_TRACKING_URI"],
        "--model": "fraud",  # the model the simulator and the examples speak of
        "--versions": "2",
        "--alias": "champion",
    }
    playbook, problems = load_file(
        ROOT / "playbooks" / "library" / "prediction-drift-rollback.yaml", default_registry()
    )
    assert problems == [] and playbook is not None
    (rollback,) = [step for step in playbook.steps if step.action == "rollback"]
    assert rollback.params.alias == option["--alias"]


def test_compose__the_simulator_runs_the_image_compose_builds():
    services = compose_config()["services"]
    simulator, fireline = services["simulator"], services["fireline"]
    assert simulator["build"] == fireline["build"] == {"context": str(ROOT)}
    assert simulator["image"] == fireline["image"]
    assert simulator["command"][0] == "simulate"


def test_prometheus__config_is_valid_and_scrapes_fireline():
    config_file = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        [tool("promtool", "prometheus"), "check", "config", str(config_file)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    config = yaml.safe_load(config_file.read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["fireline:6066"]


@pytest.mark.parametrize(
    "instruction",
    [
        "USER 10001:10001",
        "HEALTHCHECK",
        "ARG BASE_IMAGE=python:3.11-slim",
        "FROM ${BASE_IMAGE} AS build",
    ],
)
def test_dockerfile__is_multi_stage_non_root_with_healthcheck(instruction):
    assert instruction in (ROOT / "Dockerfile").read_text()


def test_grafana__dashboard_queries_only_metrics_the_worker_exports():
    import json
    import re

    from prometheus_client import CollectorRegistry

    from agents.metrics import Metrics

    registry = CollectorRegistry()
    Metrics.create(registry)
    exported = {sample.name for family in registry.collect() for sample in family.samples} | {
        family.name for family in registry.collect()
    }
    dashboard = json.loads(
        (ROOT / "deploy" / "grafana" / "dashboards" / "fireline.json").read_text()
    )
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in expressions for name in re.findall(r"fireline_[a-z_]+", expr)}
    assert len(used) >= 10
    # Histograms and counters expose _bucket/_total samples only once observed: compare names.
    missing = {
        name
        for name in used
        if name not in exported
        and name.removesuffix("_bucket") not in exported
        and name.removesuffix("_total") not in exported
    }
    assert missing == set()
    datasource = yaml.safe_load(
        (
            ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
        ).read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_slack_manifest__enables_socket_mode_buttons_with_the_bot_scopes_used():
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    assert manifest["display_information"]["name"]
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "chat:write",
        "files:write",
        "channels:history",
        "groups:history",
    ]
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True}  # no request_url: Socket Mode
    assert settings["socket_mode_enabled"] is True

"""deploy/k8s: valid for Kubernetes (kubernetes-validate --strict, offline schemas) and wired
to what fireline actually reads (settings, ports, paths, the image's user).

kubernetes-validate ships schemas for the built-in kinds only: for KEDA's ScaledObject it
prints a warning and passes. That warning is asserted (so nothing is validated silently),
and the ScaledObject is checked against a schema written here from KEDA's CRD
(keda.sh/v1alpha1) for the fields it uses: unknown fields and non-string trigger
metadata are rejected, as the API server would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agents.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
VALIDATE = Path(sysconfig.get_path("scripts")) / "kubernetes-validate"
# The oldest and the newest Kubernetes whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.25.0", "1.37.0"]
CRD_MANIFESTS = {"scaledobject.yaml"}
REGENERATE_PLAYBOOKS = ".venv/bin/python scripts/k8s_playbooks.py"


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((K8S / name).read_text())
    assert isinstance(document, dict)
    return document


def kubernetes_validate(version: str, *files: Path) -> subprocess.CompletedProcess[str]:
    assert VALIDATE.exists(), "kubernetes-validate is missing: scripts/setup embedded,dev"
    return subprocess.run(
        [str(VALIDATE), "--strict", "--kubernetes-version", version, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def container() -> dict[str, Any]:
    containers = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


def mounts() -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in container()["volumeMounts"]}


def volumes() -> dict[str, dict[str, Any]]:
    spec = load("deployment.yaml")["spec"]["template"]["spec"]
    return {v["name"]: v for v in spec["volumes"]}


# -- kubernetes-validate --------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests__pass_kubernetes_validate_strict(version):
    files = manifest_files()
    result = kubernetes_validate(version, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:
        lines = [line for line in result.stdout.splitlines() if f" {path} " in f"{line} "]
        if path.name in CRD_MANIFESTS:
            assert len(lines) == 1 and lines[0].startswith("WARN"), lines
            assert "Couldn't find schema for kind ScaledObject" in lines[0]
        else:
            assert len(lines) == 1 and lines[0].startswith("INFO"), result.stdout
            assert " passed for resource " in lines[0]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("readinessProbe:", "readynessProbe:", "readynessProbe"),  # strict: unknown field
        ("replicas: 2", "replicas: two", "'two' is not of type 'integer'"),
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: yes please", "yes please"),
    ],
)
def test_kubernetes_validate__rejects_a_broken_deployment(tmp_path, old, new, expected):
    text = (K8S / "deployment.yaml").read_text()
    assert old in text
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = kubernetes_validate(KUBERNETES_VERSIONS[-1], broken)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_kustomization__lists_every_manifest_and_the_image():
    kustomization = load("kustomization.yaml")
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    assert kustomization["namespace"] == "fireline"
    assert [i["name"] for i in kustomization["images"]] == [container()["image"]]


# -- KEDA's ScaledObject (a CRD kubernetes-validate has no schema for) ---------------

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": INT32,
                "cooldownPeriod": INT32,
                "initialCooldownPeriod": INT32,
                "idleReplicaCount": INT32,
                "minReplicaCount": INT32,
                "maxReplicaCount": INT32,
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {"type": "object"},
                            },
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metadata": STRING_MAP,
                            "authenticationRef": {"type": "object", "required": ["name"]},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
# The parameters of KEDA's kafka scaler this file may use (keda.sh docs, "Apache Kafka").
KAFKA_SCALER_PARAMETERS = {
    "bootstrapServers",
    "consumerGroup",
    "topic",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "excludePersistentLag",
    "limitToPartitionsWithLag",
    "scaleToZeroOnInvalidOffset",
    "version",
}


def test_scaledobject__matches_kedas_schema():
    scaled = load("scaledobject.yaml")
    jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        assert set(trigger["metadata"]) <= KAFKA_SCALER_PARAMETERS
        assert int(trigger["metadata"]["lagThreshold"]) > 0


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("spec", "triggers", 0, "metadata", "lagThreshold"), 20000, "is not of type 'string'"),
        (("spec", "minReplicas"), 2, "'minReplicas' was unexpected"),
    ],
)
def test_scaledobject_schema__rejects_what_keda_would(path, value, expected):
    scaled = load("scaledobject.yaml")
    target: Any = scaled
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=expected):
        jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)


def test_scaledobject__scales_the_deployment_on_its_groups_lag_over_the_input_topics():
    scaled = load("scaledobject.yaml")["spec"]
    deployment = load("deployment.yaml")
    settings_data = load("settings.yaml")["data"]
    defaults = Settings.model_fields
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["minReplicaCount"] == deployment["spec"]["replicas"]
    # More workers than partitions would sit idle.
    assert scaled["maxReplicaCount"] == int(settings_data["FIRELINE_PARTITIONS"])
    triggers = [t["metadata"] for t in scaled["triggers"]]
    assert [t["topic"] for t in triggers] == Settings.model_fields["topics"].default.inputs()
    for trigger in triggers:
        assert trigger["consumerGroup"] == defaults["app_id"].default
        assert "FIRELINE_APP_ID" not in settings_data
        assert "kafka://" + trigger["bootstrapServers"] == settings_data["FIRELINE_BROKER_URL"]
        assert trigger["allowIdleConsumers"] == "false"


# -- the Deployment and what fireline reads -------------------------------------------


def test_deployment__two_replicas_probed_on_healthz_and_readyz_with_resources():
    deployment = load("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    spec = container()
    port = spec["ports"][0]
    assert port == {"name": "http", "containerPort": 6066, "protocol": "TCP"}
    assert "FIRELINE_HTTP_PORT=6066 " in (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert set(spec["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in spec["resources"]["limits"]


def test_deployment__non_root_read_only_root_with_writable_data_and_tmp():
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    image_user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert image_user, "the image's USER is numeric, so runAsNonRoot can check it"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(image_user.group(1)) != 0
    assert pod["securityContext"]["runAsGroup"] == int(image_user.group(2))
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert mounts()["data"]["mountPath"] == env()["FIRELINE_DATA_DIR"]
    assert mounts()["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes()["data"] and "emptyDir" in volumes()["tmp"]
    assert "MPLCONFIGDIR=/tmp/" in (ROOT / "Dockerfile").read_text()  # matplotlib's cache
    assert not mounts()["data"].get("readOnly")


def test_deployment__playbooks_configmap_is_mounted_whole_at_the_playbooks_dir():
    playbooks = mounts()["playbooks"]
    assert playbooks["mountPath"] == env()["FIRELINE_PLAYBOOKS_DIR"]
    assert "subPath" not in playbooks  # kubelet never updates a subPath mount
    assert volumes()["playbooks"]["configMap"]["name"] == load("playbooks.yaml")["metadata"]["name"]


def test_playbooks_configmap__is_the_shipped_library():
    data = load("playbooks.yaml")["data"]
    library = ROOT / "playbooks" / "library"
    shipped = {p.name: p.read_text() for p in sorted(library.glob("*.yaml"))}
    assert data == shipped, (
        f"deploy/k8s/playbooks.yaml is stale; rewrite it: {REGENERATE_PLAYBOOKS}"
    )


def test_deployment__secrets_are_files_from_the_secret_named_by_file_settings():
    secret_mount = mounts()["secrets"]
    assert secret_mount["readOnly"] is True
    secret = volumes()["secrets"]["secret"]
    file_settings = {k: v for k, v in env().items() if k.endswith("_FILE")}
    assert set(file_settings) == {
        f"FIRELINE_{name.upper()}" for name in Settings.model_fields if name.endswith("_file")
    }
    keys = []
    for path in file_settings.values():
        directory, _, key = path.rpartition("/")
        assert directory == secret_mount["mountPath"]
        keys.append(key)
    # The documented command creates the Secret with every key (an empty one counts as unset).
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert f"create secret generic {secret['secretName']}" in guide
    for key in keys:
        assert f"--from-literal={key}=" in guide, key


def test_settings__every_variable_is_a_fireline_setting_that_loads(monkeypatch):
    variables = {**load("settings.yaml")["data"], **env()}
    for name in variables:
        assert name.startswith("FIRELINE_")
        field, *nested = name.removeprefix("FIRELINE_").lower().split("__")
        assert field in Settings.model_fields, name
        assert nested == [], f"{name}: the manifests set top-level settings only"
    for name in [n for n in os.environ if n.startswith("FIRELINE_")]:
        monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert str(settings.data_dir) == "/var/lib/fireline"
    assert settings.broker_url == variables["FIRELINE_BROKER_URL"]


def test_service_and_pdb__select_the_deployments_pods():
    labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    service = load("service.yaml")["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == container()["ports"][0]["name"]
    pdb = load("pdb.yaml")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert 0 < pdb["minAvailable"] < load("deployment.yaml")["spec"]["replicas"]

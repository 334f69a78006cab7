"""fireline watched by Prometheus: its alert rules, their wiring in compose, its dashboard.

``promtool test rules`` runs each rule's unit tests (deploy/prometheus/tests/); the
tests here run it, check every rule has a case where it fires and one where it does
not, and show that a changed rule fails them. test_deploy.py checks that every metric
the dashboard queries is one the worker exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from detectors.monitor import records

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "fireline.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "fireline.test.yml"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (Debian package {package!r}; scripts/system-deps installs it)"
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # the exit code is asserted by the callers
        [tool("promtool", "prometheus"), *args], capture_output=True, timeout=60, check=False
    )


def test_prometheus__config_loads_the_rules_and_names_the_job_they_watch():
    config_file = PROMETHEUS / "prometheus.yml"
    result = promtool("check", "config", str(config_file))
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, output
    assert f"Checking {RULES}\n  SUCCESS: 12 rules found" in output
    config = yaml.safe_load(config_file.read_text())
    assert config["scrape_configs"][0]["job_name"] == "fireline"  # up{job="fireline"}


def test_compose__prometheus_mounts_the_config_and_the_rules_it_loads():
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
    volumes = yaml.safe_load(result.stdout)["services"]["prometheus"]["volumes"]
    # docker-compose 1.x prints "source:target:ro", 2.x a mapping.
    pairs = (
        v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"]) for v in volumes
    )
    mounts = {target: Path(source) for source, target in pairs}
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS / "prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == PROMETHEUS / "rules"
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (pattern,) = config["rule_files"]  # relative to the config file, as Prometheus reads it
    assert [p.name for p in (PROMETHEUS).glob(pattern)] == [RULES.name]


def test_alert_rules__pass_their_promtool_unit_tests():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert "SUCCESS" in result.stdout.decode()


def test_alert_rules__each_rule_has_a_test_where_it_fires_and_one_where_it_does_not():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert len(alerts) == 12
    cases = [
        c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t["alert_rule_test"]
    ]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert fires == alerts
    assert silent == alerts
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_alert_rules__a_changed_rule_fails_its_unit_test(tmp_path):
    rules = tmp_path / "rules"
    tests = tmp_path / "tests"
    rules.mkdir()
    tests.mkdir()
    # FirelineDown now waits 10 minutes: the test expecting it after 2 must fail.
    changed = RULES.read_text().replace("for: 2m", "for: 10m", 1)
    assert changed != RULES.read_text()
    (rules / RULES.name).write_text(changed)
    (tests / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = promtool("test", "rules", str(tests / RULE_TESTS.name))
    assert result.returncode != 0
    assert "alertname: FirelineDown, time: 4m" in result.stderr.decode()


def dashboard_exprs() -> dict[str, list[str]]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fireline.json").read_text())
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}


def test_dashboard__shows_lag_last_event_readiness_and_slack_outcomes():
    used = " ".join(e for exprs in dashboard_exprs().values() for e in exprs)
    for metric in (
        "fireline_consumer_lag",
        "fireline_last_event_timestamp_seconds",
        "fireline_ready",
        "fireline_readiness_check",
        "fireline_chat_calls_total",
        "fireline_playbooks_rejected",
    ):
        assert metric in used


def test_dashboard__model_panel_names_only_kinds_the_model_monitor_emits():
    (expr,) = dashboard_exprs()["Model monitoring: detections by kind (all models)"]
    (kinds,) = re.findall(r'kind=~"([^"]+)"', expr)
    emitted = {
        value
        for name, value in vars(records).items()
        if name.isupper() and isinstance(value, str) and name != "MODEL_VERSION_CHANGE"
    }
    assert set(kinds.split("|")) <= emitted
    assert {"covariate_drift", "prediction_drift", "performance_drift"} <= set(kinds.split("|"))

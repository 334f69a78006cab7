"""fireline's own alert rules: valid, loaded by the compose Prometheus, and unit-tested.

``promtool test rules`` runs each rule's unit tests (deploy/prometheus/tests/); the
tests here run it, check every rule has a case where it fires and one where it does
not, and show that a changed rule fails them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

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
    assert f"Checking {RULES}\n  SUCCESS: 10 rules found" in output
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
    assert len(alerts) == 10
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

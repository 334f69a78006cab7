"""`fireline playbooks test` and `fireline playbooks schema`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from agents.cli.main import main
from fireline.incident import Incident, Severity, Status, Transition
from playbooks.actions import default_registry
from playbooks.loader import load_file
from playbooks.tools.explain import explain
from playbooks.tools.json_schema import playbook_schema

LIBRARY = Path(__file__).parents[3] / "playbooks" / "library"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "playbooks"

PLAYBOOK = """\
name: fraud-page
match: {kinds: ["latency_*"], models: ["fraud*"], severity_at_least: critical}
steps:
  - slack: {channel: "#{{ incident.model }}-oncall", mention: "@here"}
  - slack: {channel: "#quiet"}
    when: 'incident.severity == "info"'
  - slack: {channel: "{{ incident.nope }}"}
    on_failure: continue
"""


def incident(**update: object) -> Incident:
    return Incident(
        id="inc-1",
        fingerprint="f",
        kind="latency_spike",
        transition=Transition.OPENED,
        status=Status.OPEN,
        severity=Severity.CRITICAL,
        title="Latency spike on fraud-api",
        model="fraud",
        first_seen=0,
        last_seen=0,
    ).model_copy(update=update)


@pytest.fixture
def playbook_dir(tmp_path: Path) -> Path:
    (tmp_path / "fraud.yaml").write_text(PLAYBOOK)
    return tmp_path


def test_explain__steps_with_rendered_params_skips_and_failures(playbook_dir):
    playbook, problems = load_file(playbook_dir / "fraud.yaml", default_registry())
    assert problems == [] and playbook is not None
    (plan,) = explain([playbook], incident())
    assert plan.matches and plan.reasons == []
    assert [(s.runs, s.params.get("channel"), s.why[:18]) for s in plan.steps] == [
        (True, "#fraud-oncall", ""),
        (False, None, "when is false: inc"),
        (False, None, "params would fail:"),
    ]
    (miss,) = explain([playbook], incident(severity=Severity.WARNING, model="churn"))
    assert not miss.matches and miss.reasons == [
        "severity 'warning' is below 'critical'",
        "model 'churn' matches none of ['fraud*']",
    ]


def test_cli_test__prints_the_plan_and_runs_nothing(playbook_dir, tmp_path, capsys):
    event = tmp_path / "incident.json"
    event.write_text(incident().model_dump_json())
    assert main(["playbooks", "test", str(playbook_dir), "--incident", str(event)]) == 0
    out = capsys.readouterr().out
    assert "✓ fraud-page: matches" in out
    assert "1. slack → slack {'channel': '#fraud-oncall', 'mention': '@here', 'chart': True}" in out
    assert "1 of 1 playbook(s) match; nothing was executed." in out
    assert main(["playbooks", "test", str(playbook_dir), "--incident", str(event), "--json"]) == 0
    (plan,) = json.loads(capsys.readouterr().out)
    assert plan["playbook"] == "fraud-page" and plan["steps"][0]["runs"] is True


GATED = """\
name: fraud-rollback
runbook_url: https://wiki/runbooks/fraud
match: {kinds: [prediction_drift]}
steps:
  - slack: {mention: "@oncall {{ incident.likely_cause }}"}
  - rollback: {provider: mlflow}
    require_approval: true
    timeout: 60s
    retries: 1
    on_failure: escalate
verify:
  resolved_within: 15m
  on_unverified:
    - pagerduty: {routing_key_env: PD_KEY}
"""


def test_cli_test__shows_approval_gates_verify_and_the_defaults_the_actions_fill_in(
    tmp_path, capsys
):
    (tmp_path / "rollback.yaml").write_text(GATED)
    event = tmp_path / "incident.json"
    event.write_text(incident(kind="prediction_drift", likely_cause=None).model_dump_json())
    args = ["playbooks", "test", str(tmp_path), "--incident", str(event)]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "✓ fraud-rollback: matches",
        (
            "    1. slack → slack {'channel': '#fireline-alerts', 'mention': '@oncall ', 'chart': True, "
            "'runbook': 'https://wiki/runbooks/fraud'}"
        ),
        (
            "    2. rollback → waits for a human's approval, then rollback {'provider': 'mlflow', "
            "'model': 'fraud', 'alias': 'champion', 'check_version': True, 'headers': {}, "
            "'timeout_s': 10.0} [timeout 60 s, 1 retry, on failure: escalate]"
        ),
        "    then verify: resolved within 15 min, or else:",
        (
            "       1. pagerduty → pagerduty {'routing_key_env': 'PD_KEY', "
            "'url': 'https://events.pagerduty.com/v2/enqueue', 'timeout_s': 10.0}"
        ),
        "1 of 1 playbook(s) match; nothing was executed.",
    ]
    assert main([*args, "--json"]) == 0
    (plan,) = json.loads(capsys.readouterr().out)
    rollback = plan["steps"][1]
    assert (rollback["require_approval"], rollback["on_failure"], rollback["retries"]) == (
        True,
        "escalate",
        1,
    )
    assert rollback["params"]["to_version"] is None  # unset: the JSON keeps every param
    assert plan["verify"]["resolved_within_s"] == 900
    assert plan["verify"]["on_unverified"][0]["action"] == "pagerduty"


def test_cli_test__a_dry_run_playbook_asks_no_approval(tmp_path, capsys):
    (tmp_path / "rollback.yaml").write_text(GATED.replace("match:", "mode: dry-run\nmatch:"))
    event = tmp_path / "incident.json"
    event.write_text(incident(kind="prediction_drift").model_dump_json())
    assert main(["playbooks", "test", str(tmp_path), "--incident", str(event)]) == 0
    out = capsys.readouterr().out
    assert "✓ fraud-rollback: matches (dry-run: would only be recorded)" in out
    assert "2. rollback → (no approval asked in dry-run) rollback {" in out


def test_cli_test__a_bad_incident_file_is_a_clear_error(playbook_dir, tmp_path, capsys):
    event = tmp_path / "incident.json"
    event.write_text('{"id": "inc-1"}')
    assert main(["playbooks", "test", str(playbook_dir), "--incident", str(event)]) == 2
    assert "is not an incident event" in capsys.readouterr().err


def test_schema__accepts_the_shipped_library_and_rejects_bad_playbooks(capsys):
    assert main(["playbooks", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == playbook_schema(default_registry())
    validator = jsonschema.Draft202012Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in [*LIBRARY.glob("*.yaml"), FIXTURES / "valid_latency.yaml"]:
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path
    valid = yaml.safe_load(PLAYBOOK)
    assert list(validator.iter_errors(valid)) == []
    for bad in (
        "invalid_unknown_action.yaml",
        "invalid_bad_params.yaml",
        "invalid_transition.yaml",
    ):
        assert list(validator.iter_errors(yaml.safe_load((FIXTURES / bad).read_text()))), bad


def test_library__every_shipped_playbook_loads_and_answers_its_kind():
    from fireline.incident import Change
    from playbooks.loader import load_directory

    library = load_directory(LIBRARY, default_registry())
    deploy = Change(kind="model_version_change", model="fraud", version="8", at=0.0)
    cases = {
        "latency-spike-alert": incident(),
        "feature-drift-retrain": incident(kind="covariate_drift"),
        "prediction-drift-rollback": incident(kind="prediction_drift", changes=[deploy]),
        "error-rate-page": incident(kind="error_spike"),
        "data-quality-alert": incident(kind="data_quality"),
        "metric-anomaly-alert": incident(kind="tail_latency"),
    }
    assert sorted(p.name for p in library) == sorted(cases)
    for name, event in cases.items():
        matched = [plan.playbook for plan in explain(library, event) if plan.matches]
        assert matched == [name], (name, matched)
    by_name = {p.name: p for p in library}
    assert by_name["feature-drift-retrain"].mode == "dry-run"
    rollback = by_name["prediction-drift-rollback"]
    assert [s.require_approval for s in rollback.steps] == [False, True]
    assert rollback.verify is not None and rollback.verify.resolved_within == 900
    anomaly = incident(kind="metric_anomaly")
    assert [p.playbook for p in explain(library, anomaly) if p.matches] == ["metric-anomaly-alert"]
    no_deploy = incident(kind="prediction_drift")
    assert not any(plan.matches for plan in explain(library, no_deploy))


def test_library__no_shipped_message_says_none_when_a_field_is_empty():
    from fireline.incident import Change
    from playbooks.loader import load_directory

    library = load_directory(LIBRARY, default_registry())
    deploy = Change(kind="model_version_change", model="fraud", version="8", at=0.0)
    kinds = {k for p in library for k in p.match.kinds}
    rendered = [
        step.params
        for kind in sorted(kinds)
        for plan in explain(library, incident(kind=kind, changes=[deploy], likely_cause=None))
        for step in plan.steps
        if step.runs
    ]
    assert any(p.get("mention") == "@oncall after a deploy:" for p in rendered)  # the rollback's
    assert not [p for p in rendered if "None" in json.dumps(p)]


def test_reference__the_authors_guide_is_current():
    from playbooks.tools.reference import END, START, render_reference

    guide = (Path(__file__).parents[3] / "docs" / "playbooks.md").read_text()
    section = guide.split(START)[1].split(END)[0]
    assert section.strip() == render_reference(default_registry()).strip(), (
        "docs/playbooks.md is stale: run .venv/bin/python -m playbooks.tools.reference docs/playbooks.md"
    )

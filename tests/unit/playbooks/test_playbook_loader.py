import shutil
from pathlib import Path

import pytest

from fireline.errors import PlaybookValidationError
from playbooks.actions import default_registry
from playbooks.loader import load_directory, load_file

FIXTURES = Path(__file__).parents[2] / "fixtures" / "playbooks"


def problems_of(name: str) -> list[str]:
    path = FIXTURES / name
    playbook, problems = load_file(path, default_registry())
    assert playbook is None
    return [p.removeprefix(f"{path}:") for p in problems]


def test_load_file__valid_playbook():
    playbook, problems = load_file(FIXTURES / "valid_latency.yaml", default_registry())
    assert problems == []
    assert playbook is not None
    assert playbook.name == "latency-alert"
    assert [s.action for s in playbook.steps] == ["slack"]
    assert playbook.steps[0].params.model_dump(exclude_defaults=True) == {
        "channel": "#oncall",
        "mention": "@here",
    }


def test_load_file__unknown_action_names_line_and_known_actions():
    assert problems_of("invalid_unknown_action.yaml") == [
        "6:5: steps.1: Value error, unknown action 'rollbak'; known actions: kafka, log, pagerduty, retrain, rollback, slack, webhook"
    ]


def test_load_file__bad_params_name_the_field():
    assert problems_of("invalid_bad_params.yaml") == [
        "6:15: steps.0.slack.chanel: Extra inputs are not permitted"
    ]


def test_load_file__every_action_with_its_params():
    playbook, problems = load_file(FIXTURES / "valid_actions.yaml", default_registry())
    assert problems == []
    assert playbook is not None
    assert [s.action for s in playbook.steps] == [
        "log",
        "webhook",
        "pagerduty",
        "kafka",
        "rollback",
        "retrain",
    ]
    assert playbook.steps[5].params.model_dump(exclude_defaults=True) == {
        "provider": "command",
        "argv": ["/opt/jobs/retrain", "--model", "fraud"],
        "timeout_s": 600.0,
    }


def test_load_file__a_param_of_another_provider_is_named():
    assert problems_of("invalid_provider_params.yaml") == [
        "6:7: steps.0.rollback: Value error, url not used by provider kafka; it takes: "
        + "model, to_version, topic"
    ]


def test_load_file__every_problem_of_a_step_at_once_in_file_order(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: many\n"
        "match: {kinds: [latency_spike]}\n"
        "steps:\n"
        "  - slack: {chart: maybe, mention: '{{ incident.title '}\n"
        "    timeout: forever\n"
        "    retries: many\n"
        "  - rollbak: {}\n"
        "    on_failure: explode\n"
        "verify:\n"
        "  resolved_within: 10m\n"
        "  on_unverified:\n"
        "    - log: {level: loud}\n"
        "      backoff: -1\n"
    )
    playbook, problems = load_file(path, default_registry())
    assert playbook is None
    assert [p.removeprefix(f"{path}:") for p in problems] == [
        "4:20: steps.0.slack.chart: Input should be a valid boolean, unable to interpret input",
        (
            "4:36: steps.0.slack.mention: Value error, template '{{ incident.title ': unexpected "
            "end of template, expected 'end of print statement'."
        ),
        "5:14: steps.0.timeout: Value error, expected a duration like 30s, 10m or 1h, got 'forever'",
        "6:14: steps.0.retries: Input should be a valid integer, unable to parse string as an integer",
        (
            "7:5: steps.1: Value error, unknown action 'rollbak'; known actions: kafka, log, "
            "pagerduty, retrain, rollback, slack, webhook"
        ),
        "8:17: steps.1.on_failure: Input should be 'stop', 'continue' or 'escalate'",
        (
            "12:20: verify.on_unverified.0.log.level: Input should be 'debug', 'info', 'warning', "
            "'error' or 'critical'"
        ),
        "13:16: verify.on_unverified.0.backoff: Input should be greater than or equal to 0",
    ]


def test_load_file__a_step_with_two_actions_still_has_its_options_checked(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        "name: two\nmatch: {kinds: [x]}\nsteps:\n  - {slack: {}, log: {}, retries: 11}\n"
    )
    _, problems = load_file(path, default_registry())
    assert [p.removeprefix(f"{path}:") for p in problems] == [
        (
            "4:5: steps.0: Value error, expected exactly one action key besides the options "
            "['name', 'when', 'timeout', 'retries', 'backoff', 'require_approval', 'on_failure'], "
            "got ['slack', 'log']"
        ),
        "4:35: steps.0.retries: Input should be less than or equal to 10",
    ]


def test_load_file__yaml_syntax_error_has_line():
    assert problems_of("invalid_syntax.yaml") == [
        "4:6: YAML syntax: expected ',' or ']', but got ':'"
    ]


def test_load_file__missing_field():
    assert problems_of("invalid_missing_match.yaml") == ["1:1: match: Field required"]


def test_load_file__bad_enum_value_points_at_the_item():
    assert problems_of("invalid_transition.yaml") == [
        "4:25: match.transitions.1: Input should be 'opened', 'updated', 'escalated', 'acknowledged', 'resolved' or 'reopened'"
    ]


def test_load_directory__reports_every_bad_file_at_once():
    with pytest.raises(PlaybookValidationError) as err:
        load_directory(FIXTURES, default_registry())
    files = {Path(p.split(":")[0]).name for p in err.value.problems}
    assert files == {
        "invalid_unknown_action.yaml",
        "invalid_bad_params.yaml",
        "invalid_syntax.yaml",
        "invalid_missing_match.yaml",
        "invalid_transition.yaml",
        "invalid_provider_params.yaml",
    }


def test_load_directory__duplicate_names_are_rejected(tmp_path):
    shutil.copy(FIXTURES / "valid_latency.yaml", tmp_path / "a.yaml")
    shutil.copy(FIXTURES / "valid_latency.yaml", tmp_path / "b.yml")
    with pytest.raises(
        PlaybookValidationError, match=r"b.yml:1:1: name 'latency-alert' is also used by .*a.yaml"
    ):
        load_directory(tmp_path, default_registry())


def test_load_directory__shipped_library_is_valid():
    playbooks = load_directory(
        Path(__file__).parents[3] / "playbooks" / "library", default_registry()
    )
    assert {p.name for p in playbooks} >= {"latency-spike-alert"}


def test_load_file__control_character_is_located(tmp_path):
    path = tmp_path / "ctl.yaml"
    path.write_text("name: x\nmatch:\n  kinds: [a\x1f]\n")
    playbook, problems = load_file(path, default_registry())
    assert playbook is None
    assert problems == [f"{path}:3:12: special characters are not allowed (character #x001f)"]


def test_cli_validate__lists_every_problem_and_fails(capsys):
    from agents.cli.main import main

    assert main(["playbooks", "validate", str(FIXTURES)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "6 problem(s) found"
    assert any("invalid_unknown_action.yaml:6:5: steps.1" in line for line in err)


def test_cli_validate__prints_each_problem_of_one_step_with_its_line(tmp_path, capsys):
    from agents.cli.main import main

    (tmp_path / "p.yaml").write_text(
        "name: p\nmatch: {kinds: [x]}\nsteps:\n"
        "  - slack: {chart: maybe}\n    retries: many\n    timeout: forever\n"
    )
    assert main(["playbooks", "validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0].removeprefix(str(tmp_path)) for line in err] == [
        "/p.yaml:4:20",
        "/p.yaml:5:14",
        "/p.yaml:6:14",
        "3 problem(s) found",
    ]


def test_cli_validate__valid_directory_passes(capsys):
    from agents.cli.main import main

    assert (
        main(["playbooks", "validate", str(Path(__file__).parents[3] / "playbooks" / "library")])
        == 0
    )
    assert capsys.readouterr().out == (
        "6 playbook(s) valid: data-quality-alert, error-rate-page, feature-drift-retrain, "
        "latency-spike-alert, metric-anomaly-alert, prediction-drift-rollback\n"
    )

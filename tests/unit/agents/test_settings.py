import pytest
import yaml

from agents.cli.main import main
from agents.settings import load_settings
from fireline.errors import ConfigError


def test_settings__defaults_are_valid():
    settings = load_settings()
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.dead_letter == "fireline.dead-letter"
    assert settings.slack_secret() is None


def test_settings__environment_overrides_nested_fields(monkeypatch):
    monkeypatch.setenv("FIRELINE_TOPICS__METRICS", "prod.metrics")
    monkeypatch.setenv("FIRELINE_PARTITIONS", "8")
    settings = load_settings()
    assert settings.topics.metrics == "prod.metrics"
    assert settings.partitions == 8


def test_settings__yaml_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    config = tmp_path / "fireline.yaml"
    config.write_text(
        "broker_url: kafka://kafka:9092\nhttp_port: 7000\ntopics:\n  incidents: ops.incidents\n"
    )
    monkeypatch.setenv("FIRELINE_HTTP_PORT", "7100")
    settings = load_settings(config)
    assert settings.broker_url == "kafka://kafka:9092"
    assert settings.topics.incidents == "ops.incidents"
    assert settings.http_port == 7100


def test_settings__bad_broker_url_names_setting_and_form(monkeypatch):
    monkeypatch.setenv("FIRELINE_BROKER_URL", "localhost:9092")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == (
        "invalid fireline settings:\n"
        "  broker_url (FIRELINE_BROKER_URL): Value error, expected kafka://host:port[,host:port];"
        " got 'localhost:9092'"
    )


def test_settings__bad_port_names_setting(monkeypatch):
    monkeypatch.setenv("FIRELINE_HTTP_PORT", "http")
    with pytest.raises(
        ConfigError, match=r"http_port \(FIRELINE_HTTP_PORT\): Input should be a valid integer"
    ):
        load_settings()


def test_settings__unknown_yaml_key_is_an_error(tmp_path):
    config = tmp_path / "fireline.yaml"
    config.write_text("brokr_url: kafka://kafka:9092\n")
    with pytest.raises(
        ConfigError, match=r"brokr_url \(FIRELINE_BROKR_URL\): Extra inputs are not permitted"
    ):
        load_settings(config)


def test_settings__missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_settings__secrets_come_from_files_and_never_print(tmp_path, monkeypatch):
    token_file = tmp_path / "slack-token"
    token_file.write_text("xoxb-secret-value\n")
    app_token_file = tmp_path / "slack-app-token"
    app_token_file.write_text("xapp-secret-value\n")
    monkeypatch.setenv("FIRELINE_SLACK_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("FIRELINE_SLACK_APP_TOKEN_FILE", str(app_token_file))
    monkeypatch.setenv("FIRELINE_SLACK_SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("FIRELINE_API_TOKEN", "api-secret-value")
    settings = load_settings()
    assert settings.slack_secret() == "xoxb-secret-value"
    assert settings.slack_app_secret() == "xapp-secret-value"
    assert settings.slack_signing_key() == "signing-secret-value"
    assert settings.api_secret() == "api-secret-value"
    for secret in ("api-secret-value", "signing-secret-value"):
        assert secret not in repr(settings)
        assert secret not in settings.model_dump_json()


def test_settings__slack_app_token_from_the_environment_never_prints(monkeypatch):
    assert load_settings().slack_app_secret() is None  # no token: no Socket Mode
    monkeypatch.setenv("FIRELINE_SLACK_APP_TOKEN", "xapp-1-secret-value")
    settings = load_settings()
    assert settings.slack_app_secret() == "xapp-1-secret-value"
    assert "xapp-1-secret-value" not in repr(settings)
    assert "xapp-1-secret-value" not in settings.model_dump_json()


def test_settings__alertmanager_token_from_the_environment_or_a_file_never_prints(
    tmp_path, monkeypatch
):
    assert load_settings().alertmanager_secret() is None  # no token: the intake answers 401
    monkeypatch.setenv("FIRELINE_ALERTMANAGER_TOKEN", "am-secret-value")
    settings = load_settings()
    assert settings.alertmanager_secret() == "am-secret-value"
    assert "am-secret-value" not in repr(settings)
    assert "am-secret-value" not in settings.model_dump_json()
    token_file = tmp_path / "alertmanager-token"
    token_file.write_text("am-file-secret\n")
    monkeypatch.delenv("FIRELINE_ALERTMANAGER_TOKEN")
    monkeypatch.setenv("FIRELINE_ALERTMANAGER_TOKEN_FILE", str(token_file))
    assert load_settings().alertmanager_secret() == "am-file-secret"
    monkeypatch.setenv("FIRELINE_ALERTMANAGER_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"setting alertmanager_token_file: cannot read"):
        load_settings().alertmanager_secret()


def test_settings__unreadable_app_token_file_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("FIRELINE_SLACK_APP_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"setting slack_app_token_file: cannot read .*missing"):
        load_settings().slack_app_secret()


def test_settings__empty_secrets_are_unset(monkeypatch):
    # docker-compose passes ${FIRELINE_SLACK_APP_TOKEN:-} through as an empty string.
    for name in ("SLACK_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "API_TOKEN"):
        monkeypatch.setenv(f"FIRELINE_{name}", " ")
    settings = load_settings()
    assert settings.slack_secret() is None
    assert settings.slack_app_secret() is None
    assert settings.slack_signing_key() is None  # not an HMAC key anyone can sign with
    assert settings.api_secret() is None


def test_settings__bad_token_value_is_not_echoed(monkeypatch):
    monkeypatch.setenv("FIRELINE_SLACK_BASE_URL", "not a url")
    monkeypatch.setenv("FIRELINE_SLACK_TOKEN", "xoxb-secret-value")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "slack_base_url (FIRELINE_SLACK_BASE_URL)" in str(err.value)
    assert "xoxb-secret-value" not in str(err.value)


def test_settings__misspelt_secret_key_is_not_echoed(tmp_path):
    config = tmp_path / "fireline.yaml"
    config.write_text("slack_tokn: xoxb-secret-value\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(err.value) == (
        "invalid fireline settings:\n"
        "  slack_tokn (FIRELINE_SLACK_TOKN): Extra inputs are not permitted; got <hidden>"
        "; did you mean slack_token?"
    )


def test_settings__typo_in_a_nested_setting_is_an_error(tmp_path):
    config = tmp_path / "fireline.yaml"
    config.write_text("detection:\n  threshhold: 4\n")
    with pytest.raises(
        ConfigError, match=r"detection.threshhold \(FIRELINE_DETECTION__THRESHHOLD\): Extra inputs"
    ):
        load_settings(config)


def test_settings__unknown_fireline_variables_are_errors_naming_the_closest_setting(monkeypatch):
    monkeypatch.setenv("FIRELINE_BROKR_URL", "kafka://kafka:9092")
    monkeypatch.setenv("fireline_dry_rn", "true")  # read without case, so checked so too
    monkeypatch.setenv("FIRELINE_DETECTION__TAIL_QUANTILE", "0.9")
    monkeypatch.setenv("FIRELINE_ZZZ", "1")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == (
        "unknown FIRELINE_ environment variables (the prefix is for settings; "
        "name a playbook's secret otherwise):\n"
        "  FIRELINE_BROKR_URL: not a setting; did you mean FIRELINE_BROKER_URL?\n"
        "  FIRELINE_DETECTION__TAIL_QUANTILE: renamed FIRELINE_DETECTION__TAIL_LATENCY__QUANTILE\n"
        "  FIRELINE_ZZZ: not a setting\n"
        "  fireline_dry_rn: not a setting; did you mean FIRELINE_DRY_RUN?"
    )


def test_settings__sections_as_json_and_the_config_file_variable_are_known(tmp_path, monkeypatch):
    config = tmp_path / "fireline.yaml"
    config.write_text("partitions: 2\n")
    monkeypatch.setenv("FIRELINE_CONFIG", str(config))
    monkeypatch.setenv("FIRELINE_TOPICS", '{"metrics": "prod.metrics"}')
    monkeypatch.setenv("FIRELINE_DETECTION__TAIL_LATENCY__WINDOW", "400")
    settings = load_settings()
    assert (settings.partitions, settings.topics.metrics) == (2, "prod.metrics")
    assert settings.detection.tail_latency.window == 400


def test_cli__an_unknown_variable_exits_2_before_doing_anything(monkeypatch, capsys):
    monkeypatch.setenv("FIRELINE_SLACK_TOKN", "xoxb-secret-value")
    assert main(["config", "show"]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and "FIRELINE_SLACK_TOKN: not a setting; did you mean FIRELINE_SLACK_TOKEN?" in err
    )
    assert "xoxb-secret-value" not in err


SECRETS = {
    "FIRELINE_SLACK_TOKEN": "xoxb-secret-value",
    "FIRELINE_SLACK_SIGNING_SECRET": "signing-secret-value",
    "FIRELINE_SLACK_APP_TOKEN": "xapp-secret-value",
    "FIRELINE_API_TOKEN": "api-secret-value",
    "FIRELINE_ALERTMANAGER_TOKEN": "am-secret-value",
}


def test_cli__config_show_prints_the_effective_settings_with_secrets_masked(monkeypatch, capsys):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FIRELINE_PARTITIONS", "8")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert shown["partitions"] == 8 and shown["topics"]["metrics"] == "fireline.metrics"
    assert shown["detection"]["tail_latency"]["quantile"] == 0.99
    assert shown["slack_token_file"] is None  # where a secret would live: shown
    masked = [shown[name.removeprefix("FIRELINE_").lower()] for name in SECRETS]
    assert masked == ["***"] * len(SECRETS)
    assert not any(value in out for value in SECRETS.values())


def by_path(text: str) -> dict[str, str]:
    """Each line of an indented YAML listing under its dotted path."""
    found, parents = {}, []
    for line in text.splitlines():
        depth = (len(line) - len(line.lstrip())) // 2
        parents[depth:] = [line.strip().partition(":")[0]]
        found[".".join(parents)] = line
    return found


def test_cli__config_show_source_says_where_each_value_came_from(tmp_path, monkeypatch, capsys):
    config = tmp_path / "fireline.yaml"
    config.write_text("http_port: 7000\nincidents:\n  tick_s: 2\ndetection:\n  window: 150\n")
    monkeypatch.setenv("FIRELINE_HTTP_PORT", "7100")
    monkeypatch.setenv("FIRELINE_API_TOKEN", "api-secret-value")
    monkeypatch.setenv("FIRELINE_TOPICS", '{"metrics": "prod.metrics"}')
    assert main(["--config", str(config), "config", "show", "--source"]) == 0
    out = capsys.readouterr().out
    lines = by_path(out)
    assert lines["http_port"].endswith("7100  # env FIRELINE_HTTP_PORT")
    assert lines["incidents.tick_s"].endswith(f"2.0  # file {config}")
    assert lines["detection.window"].endswith(f"150  # file {config}")
    assert lines["topics.metrics"].endswith('"prod.metrics"  # env FIRELINE_TOPICS')
    assert lines["api_token"].endswith('"***"  # env FIRELINE_API_TOKEN')
    assert lines["partitions"].endswith("4  # default")
    assert "api-secret-value" not in out
    plain = yaml.safe_load(out)  # still YAML, the same as without --source
    assert main(["--config", str(config), "config", "show"]) == 0
    assert plain == yaml.safe_load(capsys.readouterr().out)


def test_settings__fetch_and_produce_sizes_reach_the_faust_app(monkeypatch, tmp_path):
    from agents.service.app import create_app

    monkeypatch.setenv("FIRELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIRELINE_WORKER__PRODUCER_BATCH_BYTES", "262144")
    monkeypatch.setenv("FIRELINE_WORKER__FETCH_MIN_BYTES", "1")
    settings = load_settings()
    assert settings.worker.fetch_min_bytes == 1
    assert create_app(settings).conf.producer_max_batch_size == 262144


def test_settings__a_producer_batch_below_16_kib_names_the_setting(monkeypatch):
    monkeypatch.setenv("FIRELINE_WORKER__PRODUCER_BATCH_BYTES", "1000")
    with pytest.raises(ConfigError, match=r"worker\.producer_batch_bytes"):
        load_settings()

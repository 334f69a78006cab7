"""Pure parts of the built-in actions: signing, payload mapping, version choice, params."""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from fireline.errors import ActionError, BrokerError
from fireline.incident import Change, Severity, Transition
from playbooks.actions import default_registry
from playbooks.actions.http import HttpReply, url_target
from playbooks.actions.mlflow import previous_version
from playbooks.actions.pagerduty import pagerduty_event
from playbooks.actions.retrain import RetrainParams, airflow_body
from playbooks.actions.rollback import RollbackParams, rollback_target
from playbooks.actions.secrets import read_secret, require_secret
from playbooks.actions.signing import signature, signature_headers, verify
from playbooks.chat.sinks import ConsoleSink
from playbooks.context import ActionContext
from tests.factories import make_incident


def test_signature__is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"inc-1"}'
    expected = hmac.new(b"s3cret", b"1795255200." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1795255200, body) == f"sha256={expected}"


def test_signature__changes_with_timestamp_body_and_secret():
    base = signature("a", 1, b"{}")
    assert (
        len({base, signature("b", 1, b"{}"), signature("a", 2, b"{}"), signature("a", 1, b"[]")})
        == 4
    )


def test_signature_headers__verify_round_trip_and_reject_tampering():
    headers = signature_headers("k", 1795255200, b"body", "X-Sig")
    assert headers["X-Fireline-Timestamp"] == "1795255200"
    assert verify("k", headers["X-Fireline-Timestamp"], b"body", headers["X-Sig"])
    assert not verify("k", headers["X-Fireline-Timestamp"], b"body!", headers["X-Sig"])
    assert not verify("k", "1795255201", b"body", headers["X-Sig"])


@pytest.mark.parametrize(
    ("transition", "action"),
    [
        (Transition.OPENED, "trigger"),
        (Transition.ESCALATED, "trigger"),
        (Transition.REOPENED, "trigger"),
        (Transition.ACKNOWLEDGED, "acknowledge"),
        (Transition.RESOLVED, "resolve"),
    ],
)
def test_pagerduty_event__action_follows_transition(transition, action):
    event = pagerduty_event(make_incident(transition=transition), "rk", None, None)
    assert event["event_action"] == action
    assert event["dedup_key"] == "inc-0123456789abcdef"
    assert ("payload" in event) is (action == "trigger")


def test_pagerduty_event__trigger_payload_maps_the_incident():
    incident = make_incident(severity=Severity.WARNING, title="x" * 2000)
    payload = pagerduty_event(incident, "rk", None, None)["payload"]
    assert payload["severity"] == "warning"
    assert payload["summary"] == "x" * 1024
    assert payload["source"] == "fraud-api"
    assert payload["component"] == "fraud"
    assert payload["class"] == "latency_spike"
    assert payload["custom_details"]["incident_id"] == incident.id


def test_pagerduty_event__explicit_action_wins():
    event = pagerduty_event(make_incident(transition=Transition.OPENED), "rk", "resolve", None)
    assert event["event_action"] == "resolve"


@pytest.mark.parametrize(
    ("versions", "current", "expected"),
    [([1, 2, 3], 3, 2), ([1, 2, 3, 4], 3, 2), ([5, 1, 9, 7], 9, 7), ([3], 3, None), ([], 2, None)],
)
def test_previous_version__highest_below_current(versions, current, expected):
    assert previous_version(versions, current) == expected


def test_rollback_target__explicit_then_latest_change_of_this_model():
    changes = [
        Change(kind="model_version_change", model="fraud", version="2", previous_version="1", at=1),
        Change(kind="model_version_change", model="other", version="9", previous_version="8", at=2),
        Change(kind="model_version_change", model="fraud", version="3", previous_version="2", at=3),
    ]
    incident = make_incident(changes=changes)
    assert rollback_target(incident, "fraud", "1") == "1"
    assert rollback_target(incident, "fraud", None) == "2"
    assert rollback_target(make_incident(), "fraud", None) is None


def test_airflow_body__run_id_per_revision_and_incident_in_conf():
    body = airflow_body(make_incident(revision=4))
    assert body["dag_run_id"] == "fireline-inc-0123456789abcdef-r4"
    assert body["conf"]["incident"]["model"] == "fraud"


def test_url_target__drops_scheme_credentials_and_query():
    assert (
        url_target("https://u:pw@hooks.example.com:8443/a/b?token=t")
        == "hooks.example.com:8443/a/b"
    )


def test_http_reply__describe_masks_secrets_and_cuts_long_bodies():
    reply = HttpReply(401, b'{"error": "bad token tok-123"}' + b" " + b"y" * 500)
    text = reply.describe(redact=["tok-123"])
    assert text.startswith('HTTP 401: {"error": "bad token ***"}')
    assert "tok-123" not in text
    assert text.endswith("…") and len(text) < 240


def test_read_secret__from_env_and_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("FL_TEST_SECRET", "from-env")
    (tmp_path / "s").write_text("from-file\n")
    assert read_secret("FL_TEST_SECRET", None, "secret") == "from-env"
    assert read_secret(None, tmp_path / "s", "secret") == "from-file"
    assert read_secret(None, None, "secret") is None


def test_read_secret__errors_name_the_param_and_variable(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("FL_TEST_MISSING", raising=False)
    with pytest.raises(
        ActionError,
        match=r"^secret_env names the environment variable FL_TEST_MISSING, which is unset",
    ):
        read_secret("FL_TEST_MISSING", None, "secret")
    with pytest.raises(ActionError, match=r"^routing_key_file .*nope cannot be read"):
        read_secret(None, tmp_path / "nope", "routing_key")
    with pytest.raises(ActionError, match=r"^give token_env or token_file, not both$"):
        read_secret("X", tmp_path / "nope", "token")
    with pytest.raises(
        ActionError, match=r"^set routing_key_env \(an environment variable\) or routing_key_file$"
    ):
        require_secret(None, None, "routing_key")


def test_rollback_params__reject_other_providers_params_and_missing_ones():
    with pytest.raises(ValidationError, match="url not used by provider mlflow"):
        RollbackParams(provider="mlflow", url="http://x/")
    with pytest.raises(ValidationError, match="provider kafka needs topic"):
        RollbackParams(provider="kafka")
    with pytest.raises(ValidationError, match="to_version must be an MLflow version number"):
        RollbackParams(provider="mlflow", to_version="v2")
    assert RollbackParams(provider="http", url="http://deployer/rollback").timeout_s == 10.0


def test_retrain_params__command_needs_argv_and_takes_no_url():
    with pytest.raises(ValidationError, match="provider command needs argv"):
        RetrainParams(provider="command")
    with pytest.raises(ValidationError, match="url not used by provider command"):
        RetrainParams(provider="command", argv=["true"], url="http://x/")


def test_default_registry__has_every_action():
    assert default_registry().names() == [
        "kafka",
        "log",
        "pagerduty",
        "retrain",
        "rollback",
        "slack",
        "webhook",
    ]


async def test_log_action__logs_the_incident_at_the_level(caplog):
    action = default_registry().get("log")
    params = action.params_model.model_validate({"level": "warning", "message": "hello"})
    with caplog.at_level(logging.DEBUG, logger="fireline.actions"):
        result = await action.run(make_incident(), params, ActionContext())
    assert result.ok and result.target == "fireline.actions"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "incident inc-0123456789abcdef opened: latency_ms of fraud-api is 5x its baseline (hello)"
    )


async def test_kafka_action__without_a_publisher_is_an_action_error():
    action = default_registry().get("kafka")
    params = action.params_model.model_validate({"topic": "t"})
    with pytest.raises(ActionError, match=r"^no Kafka publisher is configured for this worker$"):
        await action.run(make_incident(), params, ActionContext())


async def test_slack_action__without_a_chat_sink_or_channel_names_what_is_missing():
    action = default_registry().get("slack")
    params = action.params_model.model_validate({})
    with pytest.raises(ActionError, match=r"^no chat sink is configured for this worker$"):
        await action.run(make_incident(), params, ActionContext())
    with pytest.raises(ActionError, match=r"^no default chat channel is configured for this"):
        await action.run(make_incident(), params, ActionContext(chat=ConsoleSink()))


class RefusingPublisher:
    """Does what FaustPublisher does once its retries are spent."""

    async def publish(self, topic, records):
        raise BrokerError(f"cannot publish {len(records)} records to {topic} after 6 attempt(s)")


async def test_kafka_action__broker_failure_is_a_failed_result():
    action = default_registry().get("kafka")
    params = action.params_model.model_validate({"topic": "t"})
    context = ActionContext(events=RefusingPublisher())
    result = await action.run(make_incident(), params, context)
    assert not result.ok
    assert result.target == "t"
    assert result.detail == "not published to t: cannot publish 1 records to t after 6 attempt(s)"

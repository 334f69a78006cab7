"""The Block Kit root message and approval message of an incident."""

from __future__ import annotations

import json

import pytest

from fireline.incident import Resolution, Signal, Status, Transition
from playbooks.approvals import ApprovalRequest
from playbooks.chat.blocks import (
    Links,
    approval_message,
    dashboard_url,
    parse_action_id,
    root_message,
    status_text,
)
from tests.factories import make_incident

SIGNAL = Signal(
    detector="latency",
    series="latency_ms{service=fraud-api}",
    observed=250.0,
    baseline=50.0,
    score=0.99,
    at=1795255200.0,
    kind="latency_spike",
)


def incident(**overrides):
    fields = {"signals": [SIGNAL], "likely_cause": "fraud v3 went live (was v2) 4 min before"}
    return make_incident(**(fields | overrides))


def buttons(message):
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def test_root_message__says_what_how_bad_since_when_why_and_where_to_look():
    links = Links(runbook="https://wiki/runbooks/latency", dashboard="https://grafana/d/x")
    message = root_message(incident(), links)
    shown = json.dumps(message.blocks)
    assert message.blocks[0]["type"] == "header"
    assert (
        "[CRITICAL] latency_ms of fraud-api is 5x its baseline" in message.blocks[0]["text"]["text"]
    )
    for part in (
        "fraud-api / model fraud v3",
        "2026-11-21 10:00:00Z",
        "fraud v3 went live (was v2) 4 min before",
        "observed *250.0* vs baseline 50.0 (5.0x), detector `latency`",
        "<https://wiki/runbooks/latency|Runbook>",
        "<https://grafana/d/x|Dashboard>",
        ":red_circle: Open",
        "inc-0123456789abcdef",
    ):
        assert part in shown, part
    assert message.text.splitlines() == [
        ":rotating_light: [CRITICAL] latency_ms of fraud-api is 5x its baseline",
        "Subject: fraud-api / model fraud v3",
        "Since: 2026-11-21 10:00:00Z",
        "Likely cause: fraud v3 went live (was v2) 4 min before",
        "latency_ms{service=fraud-api}: observed 250.0 vs normal 50.0 (5.0x), detector latency",
        "Incident inc-0123456789abcdef (open, 1 detection)",
        "Runbook: https://wiki/runbooks/latency",
        "Dashboard: https://grafana/d/x",
    ]


def test_root_message__names_the_series_as_a_selector_to_paste_into_prometheus():
    signal = SIGNAL.model_copy(update={"selector": 'latency_ms{service="fraud-api"}'})
    message = root_message(incident(signals=[signal]))
    assert 'latency_ms{service="fraud-api"}: observed 250.0 vs normal 50.0' in message.text
    assert '`latency_ms{service=\\"fraud-api\\"}` observed *250.0*' in json.dumps(message.blocks)


def test_root_message__a_mention_comes_first_in_text_and_blocks():
    message = root_message(incident(), mention="<!subteam^S0123>")
    assert message.text.startswith("<!subteam^S0123> :rotating_light: [CRITICAL]")
    assert message.blocks[0]["text"]["text"] == "<!subteam^S0123>"


def test_root_message__buttons_carry_the_incident_id():
    assert buttons(root_message(incident())) == [
        "ack:inc-0123456789abcdef",
        "resolve:inc-0123456789abcdef",
        "silence1h:inc-0123456789abcdef",
    ]


def test_root_message__acknowledged_has_no_acknowledge_button_and_resolved_none():
    acked = incident(status=Status.ACKNOWLEDGED, acknowledged_by="alice")
    assert buttons(root_message(acked)) == [
        "resolve:inc-0123456789abcdef",
        "silence1h:inc-0123456789abcdef",
    ]
    resolved = incident(status=Status.RESOLVED, resolved_at=1795255200.0 + 720)
    assert buttons(root_message(resolved)) == []


def test_status_text__resolved_after_and_by_whom():
    resolved = incident(
        status=Status.RESOLVED,
        transition=Transition.RESOLVED,
        resolved_at=1795255200.0 + 720,
        resolved_by="bob",
        resolution=Resolution.MANUAL,
    )
    assert status_text(resolved) == ":white_check_mark: Resolved by bob after 12 min (manual)"
    assert "[RESOLVED] latency_ms of fraud-api is 5x its baseline by bob" in (
        root_message(resolved).text
    )
    acked = incident(status=Status.ACKNOWLEDGED, acknowledged_by="alice")
    assert status_text(acked) == ":eyes: Acknowledged by alice"


def test_root_message__without_signals_cause_or_links_leaves_those_out():
    message = root_message(make_incident())
    assert not any(
        line.startswith(("Detected", "Followed", "Runbook")) for line in message.text.splitlines()
    )
    assert "Dashboard" not in json.dumps(message.blocks)


def test_dashboard_url__fills_the_template_from_the_incident():
    template = "https://grafana/d/x?var-model={model}&var-version={version}&from={from_ms}"
    assert dashboard_url(template, incident()) == (
        "https://grafana/d/x?var-model=fraud&var-version=3&from=1795254300000"
    )


@pytest.mark.parametrize("template", [None, "", "https://g/{nope}", "https://g/{model"])
def test_dashboard_url__none_without_a_usable_template(template):
    assert dashboard_url(template, incident()) is None


def test_dashboard_url__none_when_the_incident_lacks_the_field():
    assert dashboard_url("https://g/?m={model}", incident(model=None)) is None


def test_approval_message__approve_and_reject_buttons_carry_the_approval_id():
    request = ApprovalRequest(
        id="apr-1",
        incident=incident(),
        playbook="rollback",
        step_index=0,
        step="rollback",
        action="rollback",
        requested_at=1795255200.0,
    )
    message = approval_message(request, '{"provider":"mlflow"}')
    assert buttons(message) == ["approve:apr-1", "reject:apr-1"]
    assert "fireline approvals approve apr-1" in message.text


def test_parse_action_id__verb_and_target_or_value_error():
    assert parse_action_id("silence1h:inc-1") == ("silence1h", "inc-1")
    with pytest.raises(ValueError, match="not a fireline action id"):
        parse_action_id("nonsense")


def test_shown_series__an_evidence_series_by_its_signals_selector():
    from fireline.incident import Evidence
    from playbooks.chat.messages import shown_series

    evidence = Evidence(series=SIGNAL.series, baseline=50.0, detected_at=1795255200.0)
    named = SIGNAL.model_copy(update={"selector": 'latency_ms{service="fraud-api"}'})
    assert shown_series(incident(signals=[named]), evidence) == 'latency_ms{service="fraud-api"}'
    assert shown_series(incident(signals=[SIGNAL]), evidence) == "latency_ms{service=fraud-api}"


def test_incident_text__a_resolved_alert_says_it_cleared_having_no_level_to_compare():
    from playbooks.chat.messages import incident_text

    firing = Signal(
        detector="alertmanager",
        series='ALERTS{alertname="HighErrorRate"}',
        observed=1.0,
        baseline=0.0,
        score=1.0,
        at=1795255200.0,
        message="Error rate above 5%",
        fingerprint="a",
    )
    cleared = firing.model_copy(update={"observed": 0.0, "cleared": True})
    resolved = incident(
        signals=[firing, cleared], transition=Transition.RESOLVED, status=Status.RESOLVED
    )
    assert (
        'ALERTS{alertname="HighErrorRate"}: cleared (Error rate above 5%), detector alertmanager'
        in incident_text(resolved).splitlines()
    )

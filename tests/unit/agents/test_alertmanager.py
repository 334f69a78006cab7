"""Alertmanager alerts as detections (pure mapping), and what the incident manager makes of them.

``tests/fixtures/alertmanager/*.json`` are payloads Alertmanager 0.25 (Debian
bookworm) posted for a Prometheus 2.42 rule, hosts and ports renamed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agents.incidents.alertmanager import alert_series, read_payload
from agents.incidents.manager import IncidentManager, SubjectState
from agents.settings import Incidents
from fireline.detections import Detection
from fireline.errors import EventError
from fireline.incident import Resolution, Severity, Signal, Status, Transition
from playbooks.schema import Match

FIXTURES = Path(__file__).parents[2] / "fixtures" / "alertmanager"
STARTS_AT = datetime.fromisoformat("2026-11-28T06:49:04.119Z").timestamp()
ENDS_AT = datetime.fromisoformat("2026-11-28T06:49:14.119Z").timestamp()
SERIES = (
    'ALERTS{alertname="HighErrorRate",instance="checkout:8080",job="demo",'
    'service="checkout",severity="critical"}'
)
POLICY = Incidents(quiet_period_s=60, signal_refresh_s=30, signal_expiry_s=180)


def payload(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def alert(**labels: str) -> dict[str, Any]:
    """The fixture's firing alert with other labels."""
    [first] = payload("firing")["alerts"]
    return {**first, "labels": {"alertname": "HighErrorRate", **labels}}


def detection_of(raw_alert: dict[str, Any]) -> Detection:
    [detection] = read_payload(body({**payload("firing"), "alerts": [raw_alert]})).detections
    return detection


def test_read_payload__a_firing_alert_raises_or_keeps_alive_its_subjects_signal():
    intake = read_payload(body(payload("firing")))

    assert (intake.problems, intake.truncated) == ([], 0)
    [detection] = intake.detections
    assert detection.kind == "alert:HighErrorRate"
    assert detection.subject_key == "service:checkout"
    assert detection.severity is Severity.CRITICAL
    assert detection.fingerprint == "alert:HighErrorRate|018747723bd6060b"
    assert (detection.series, detection.refresh, detection.cleared) == (SERIES, True, False)
    assert detection.labels == payload("firing")["alerts"][0]["labels"]
    assert detection.signal == Signal(
        detector="alertmanager",
        series=SERIES,
        observed=1.0,
        baseline=0.0,
        score=1.0,
        at=STARTS_AT,
        message="checkout errors are high",
    )


def test_read_payload__a_resolved_alert_clears_its_signal_when_it_ended():
    [detection] = read_payload(body(payload("resolved"))).detections

    assert (detection.cleared, detection.refresh) == (True, False)
    assert detection.fingerprint == "alert:HighErrorRate|018747723bd6060b"
    assert (detection.signal.at, detection.signal.observed, detection.signal.score) == (
        ENDS_AT,
        0.0,
        0.0,
    )


@pytest.mark.parametrize(
    ("labels", "subject", "service"),
    [
        ({"model": "fraud", "service": "api", "job": "node"}, "model:fraud", "api"),
        ({"service": "api", "job": "node"}, "service:api", "api"),
        ({"job": "node"}, "service:node", "node"),  # the job names the service
        (
            {"instance": "db-1:9100"},  # none: the alert is a subject of its own
            'series:ALERTS{alertname="HighErrorRate",instance="db-1:9100"}',
            None,
        ),
    ],
)
def test_alert_detection__subject_is_the_model_else_the_service_else_the_job(
    labels, subject, service
):
    detection = detection_of(alert(**labels))

    assert detection.subject_key == subject
    assert detection.labels == {
        "alertname": "HighErrorRate",
        **labels,
        **({"service": service} if service else {}),
    }


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ({"severity": "critical"}, Severity.CRITICAL),
        ({"severity": "Warning"}, Severity.WARNING),
        ({"severity": "info"}, Severity.INFO),
        ({"severity": "none"}, Severity.INFO),
        ({"severity": "page"}, Severity.WARNING),  # unknown: warning, the label kept
        ({}, Severity.WARNING),
    ],
)
def test_alert_detection__severity_comes_from_the_severity_label(label, severity):
    detection = detection_of(alert(job="api", **label))

    assert detection.severity is severity
    assert detection.labels.get("severity") == label.get("severity")


def test_alert_series__is_a_promql_selector_with_values_escaped():
    labels = {"path": 'C:\\tmp "x"\nend', "alertname": "Disk"}

    assert alert_series(labels) == 'ALERTS{alertname="Disk",path="C:\\\\tmp \\"x\\"\\nend"}'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "the body is not JSON: Expecting property name enclosed in double quotes"),
        (b"[]", "the body must be a JSON object (a webhook payload)"),
        (body({"version": "4"}), "invalid webhook payload: alerts: Field required"),
        (
            body({"version": "4", "alerts": {"a": 1}}),
            "invalid webhook payload: alerts: Input should be a valid list",
        ),
        (
            body({"version": "3", "alerts": []}),
            (
                "webhook payload version '3' is not supported; "
                "fireline reads version 4 (Alertmanager 0.19 and later)"
            ),
        ),
    ],
)
def test_read_payload__an_unusable_body_is_refused_whole_with_the_reason(raw, message):
    with pytest.raises(EventError) as err:
        read_payload(raw)

    assert str(err.value).startswith(message)


def test_read_payload__bad_alerts_are_named_and_the_good_ones_kept():
    good = alert(job="api")
    nameless = {**good, "labels": {"job": "api"}}
    undated = {**good, "startsAt": "yesterday"}
    unknown_status = {**good, "status": "pending", "fingerprint": ""}

    intake = read_payload(
        body({**payload("firing"), "alerts": [nameless, good, undated, "x", unknown_status]})
    )

    assert [d.subject_key for d in intake.detections] == ["service:api"]
    assert intake.problems == [
        "alerts[0]: labels: Value error, the alertname label is missing",
        (
            "alerts[2] (HighErrorRate): startsAt: Input should be a valid datetime or date, "
            "input is too short"
        ),
        "alerts[3]: body: Input should be a valid dictionary or instance of Alert",
        (
            "alerts[4] (HighErrorRate): status: Input should be 'firing' or 'resolved'; "
            "fingerprint: String should have at least 1 character"
        ),
    ]


def test_read_payload__alerts_alertmanager_left_out_are_counted():
    intake = read_payload(body({**payload("firing"), "truncatedAlerts": 7}))

    assert (len(intake.detections), intake.truncated) == (1, 7)


# -- through the incident manager ---------------------------------------------------


class Desk:
    """One subject's state and a manager; ``now`` is the worker clock of each input."""

    def __init__(self) -> None:
        self.manager = IncidentManager(POLICY)
        self.state = SubjectState()

    def send(self, name: str, now: float) -> list[Any]:
        events = []
        for detection in read_payload(body(payload(name))).detections:
            events += self.manager.on_detection(self.state, detection, now, [])
        return events

    def tick(self, now: float) -> list[Any]:
        return self.manager.tick(self.state, now, [])


def test_manager__repeats_of_a_firing_alert_open_one_incident_that_lasts():
    desk = Desk()
    now = STARTS_AT + 2

    [opened] = desk.send("firing", now)
    assert (opened.transition, opened.severity) == (Transition.OPENED, Severity.CRITICAL)
    assert opened.title == "Alert: HighErrorRate on checkout"
    assert (opened.fingerprint, opened.first_seen) == (
        "alert:HighErrorRate|018747723bd6060b",
        STARTS_AT,
    )
    # Alertmanager re-sends it every repeat interval (here a minute): nothing new to
    # say, and it outlives signal_expiry_s (180 s) for as long as it keeps coming.
    for minute in range(1, 11):
        assert desk.send("firing", now + 60 * minute) == []
        assert desk.tick(now + 60 * minute + 30) == []

    assert desk.send("resolved", now + 630) == []
    assert desk.tick(now + 630 + POLICY.quiet_period_s - 1) == []
    [resolved] = desk.tick(now + 630 + POLICY.quiet_period_s)
    assert (resolved.id, resolved.status, resolved.resolution) == (
        opened.id,
        Status.RESOLVED,
        Resolution.RECOVERED,
    )
    assert (resolved.count, resolved.last_seen) == (1, ENDS_AT)


def test_manager__an_alert_no_longer_re_sent_expires_and_resolves_quiet():
    desk = Desk()
    desk.send("firing", 1000.0)

    assert desk.tick(1000.0 + POLICY.signal_expiry_s) == []
    [resolved] = desk.tick(1000.0 + POLICY.signal_expiry_s + 1)
    assert resolved.resolution is Resolution.QUIET


def test_manager__an_alert_on_a_drifting_model_joins_its_incident():
    manager, state = IncidentManager(POLICY), SubjectState()
    drift = Detection(
        kind="feature_drift",
        series="fraud:amount",
        labels={"model": "fraud", "model_version": "7"},
        signal=Signal(
            detector="PSI", series="fraud:amount", observed=0.4, baseline=0.1, score=0.8, at=1.0
        ),
    )
    [opened] = manager.on_detection(state, drift, 100.0, [])
    firing = detection_of(alert(model="fraud", job="scorer", severity="critical"))
    assert firing.subject_key == opened.subject_key == "model:fraud"

    [joined] = manager.on_detection(state, firing, 130.0, [])

    assert (joined.id, joined.transition, joined.severity) == (
        opened.id,
        Transition.ESCALATED,
        Severity.CRITICAL,
    )
    assert joined.fingerprints == [opened.fingerprint, firing.fingerprint]


def test_playbook_match__alerts_are_matched_by_kind_glob_and_labels():
    [opened] = Desk().send("firing", STARTS_AT)
    match = Match(kinds=["alert:*"], labels={"severity": "critical", "job": "de*"})

    assert match.mismatches(opened) == []
    assert Match(kinds=["alert:Disk*"]).mismatches(opened) == [
        "kind 'alert:HighErrorRate' is not one of ['alert:Disk*']"
    ]
    assert Match(kinds=["alert:*"], labels={"severity": "warning"}).mismatches(opened) == [
        "label severity='critical' does not match 'warning'"
    ]

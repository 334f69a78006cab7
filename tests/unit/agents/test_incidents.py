"""The incident manager's rules, driven with explicit times (pure logic, no Kafka)."""

import pytest

from agents.incidents.manager import IncidentManager, SubjectState
from agents.incidents.silences import Silence
from agents.settings import Incidents
from fireline.detections import Detection
from fireline.errors import IncidentStateError
from fireline.incident import (
    Change,
    EvidencePoint,
    Resolution,
    Severity,
    Signal,
    Status,
    Transition,
)
from playbooks.chat.messages import incident_text

LABELS = {"service": "fraud-api", "model": "fraud", "model_version": "7"}
LATENCY = "latency_ms{service=fraud-api}"
POLICY = Incidents(
    correlation_window_s=300,
    quiet_period_s=60,
    signal_refresh_s=30,
    signal_expiry_s=180,
    reopen_window_s=900,
    flap_threshold=3,
    flap_window_s=600,
)


def detection(
    at: float,
    observed: float = 400.0,
    *,
    kind: str = "latency_spike",
    series: str = LATENCY,
    cleared: bool = False,
    refresh: bool = False,
    adapted: bool = False,
    labels: dict[str, str] = LABELS,
) -> Detection:
    signal = Signal(
        detector="LatencySpike", series=series, observed=observed, baseline=50.0, score=0.9, at=at
    )
    return Detection(
        kind=kind,
        series=series,
        labels=labels,
        signal=signal,
        cleared=cleared,
        refresh=refresh,
        adapted=adapted,
        evidence=[EvidencePoint(at=at - 1, value=50.0), EvidencePoint(at=at, value=observed)],
    )


class Desk:
    """One subject's state and a manager, with the worker clock set by each call."""

    def __init__(self, policy: Incidents = POLICY) -> None:
        self.manager = IncidentManager(policy)
        self.state = SubjectState()
        self.silences: list[Silence] = []

    def detect(self, now: float, **kwargs):
        return self.manager.on_detection(self.state, detection(now, **kwargs), now, self.silences)

    def tick(self, now: float):
        return self.manager.tick(self.state, now, self.silences)

    def round_trip(self) -> None:
        """What the Faust table does between inputs."""
        self.state = SubjectState.model_validate_json(self.state.model_dump_json())


def test_opens_one_incident_with_a_stable_id_and_evidence():
    desk = Desk()
    (opened,) = desk.detect(100.0, observed=200.0)
    assert (opened.transition, opened.status, opened.severity, opened.revision) == (
        Transition.OPENED,
        Status.OPEN,
        Severity.WARNING,
        1,
    )
    assert opened.id == Desk().detect(100.0, observed=200.0)[0].id
    assert opened.id.startswith("inc-")
    assert opened.subject_key == "model:fraud"
    assert opened.fingerprint == f"latency_spike|fraud-api|7|{LATENCY}"
    assert [(p.at, p.value) for p in opened.evidence[0].points] == [(99.0, 50.0), (100.0, 200.0)]


def test_dedup__repeats_update_count_last_seen_and_peak_severity():
    desk = Desk()
    (opened,) = desk.detect(100.0, observed=200.0)
    desk.detect(110.0, cleared=True)
    (again,) = desk.detect(120.0, observed=400.0)  # the same problem, worse
    assert (again.id, again.transition, again.count) == (opened.id, Transition.ESCALATED, 2)
    assert (again.severity, again.last_seen, again.revision) == (Severity.CRITICAL, 120.0, 2)
    desk.detect(130.0, cleared=True)
    (third,) = desk.detect(140.0, observed=200.0)  # milder: severity stays at its peak
    assert (third.transition, third.severity, third.count) == (
        Transition.UPDATED,
        Severity.CRITICAL,
        3,
    )
    assert len([t for t in desk.state.tracked if t.incident.is_open]) == 1


def test_refresh_of_an_open_signal_publishes_nothing_but_keeps_it_alive():
    desk = Desk()
    desk.detect(100.0)
    for now in (130.0, 160.0, 190.0, 220.0, 250.0, 280.0):
        assert desk.detect(now, refresh=True) == []
        assert desk.tick(now) == []
    assert desk.state.tracked[0].incident.last_seen == 280.0


def test_correlation__other_signals_on_the_subject_join_the_open_incident():
    desk = Desk()
    (opened,) = desk.detect(100.0)
    errors = "http_errors_ratio{service=fraud-api}"
    (joined,) = desk.detect(150.0, kind="error_spike", series=errors)
    assert (joined.id, joined.transition) == (opened.id, Transition.UPDATED)
    assert [s.kind for s in joined.signals] == ["latency_spike", "error_spike"]
    assert len(joined.fingerprints) == 2
    assert {e.series for e in joined.evidence} == {LATENCY, errors}


def test_correlation__a_signal_long_after_the_last_activity_opens_a_related_incident():
    desk = Desk()
    (first,) = desk.detect(100.0)
    for now in range(130, 1000, 30):  # still firing, refreshed, but no new activity... yet
        desk.detect(float(now), refresh=True)
    (second,) = desk.detect(1000.0, kind="feature_drift", series="amount")
    assert second.transition is Transition.UPDATED  # refreshes count as activity
    desk2 = Desk()
    desk2.detect(100.0)
    desk2.detect(1000.0, kind="feature_drift", series="amount")  # no refresh: stale group
    opened = [t.incident for t in desk2.state.tracked]
    assert len(opened) == 2 and opened[1].related == [opened[0].id]
    assert first.id == opened[0].id


def test_auto_resolve__after_every_signal_cleared_and_the_quiet_period():
    desk = Desk()
    (opened,) = desk.detect(100.0)
    desk.detect(130.0, cleared=True)
    assert desk.tick(150.0) == []  # quiet for 20 s only
    desk.round_trip()
    (resolved,) = desk.tick(190.0)
    assert (resolved.id, resolved.transition, resolved.status) == (
        opened.id,
        Transition.RESOLVED,
        Status.RESOLVED,
    )
    assert (resolved.resolution, resolved.resolved_at) == (Resolution.RECOVERED, 190.0)
    assert incident_text(resolved).splitlines()[0] == (
        ":white_check_mark: [RESOLVED] Latency spike on fraud-api after 30 s"
    )
    assert desk.tick(250.0) == []


def test_auto_resolve__the_resolution_shows_what_the_series_came_back_to_not_the_peak():
    desk = Desk()
    desk.detect(100.0, observed=400.0)
    desk.detect(130.0, observed=52.5, cleared=True)
    (resolved,) = desk.tick(190.0)
    lines = incident_text(resolved).splitlines()
    assert lines[3] == (
        f"{LATENCY}: back to 52.5 vs normal 50.0; 400.0 when detected, detector LatencySpike"
    )
    assert not any("observed 400.0" in line for line in lines)


def test_auto_resolve__a_signal_that_stops_being_re_sent_expires_and_resolves_quiet():
    desk = Desk()
    desk.detect(100.0)  # raised, then its detector is lost (worker restart, series gone)
    assert desk.tick(250.0) == []  # 150 s: not expired yet
    (resolved,) = desk.tick(100.0 + 181 + 60)
    assert resolved.resolution is Resolution.QUIET
    assert (
        incident_text(resolved).splitlines()[0].startswith(":white_check_mark: [RESOLVED: QUIET]")
    )


def test_auto_resolve__new_normal_is_reported_as_such():
    desk = Desk()
    desk.detect(100.0)
    desk.detect(190.0, observed=99.0, cleared=True, adapted=True)
    (resolved,) = desk.tick(260.0)
    assert resolved.resolution is Resolution.NEW_NORMAL
    assert incident_text(resolved).splitlines()[0] == (
        ":warning: [RESOLVED: NEW LEVEL] Latency spike on fraud-api after 90 s"
    )


def test_reopen__a_recurrence_soon_after_resolving_reopens_the_same_incident():
    desk = Desk()
    (opened,) = desk.detect(100.0)
    desk.detect(110.0, cleared=True)
    (resolved,) = desk.tick(200.0)
    (reopened,) = desk.detect(500.0)
    assert (reopened.id, reopened.transition, reopened.status, reopened.reopened) == (
        opened.id,
        Transition.REOPENED,
        Status.OPEN,
        1,
    )
    assert reopened.resolution is None and reopened.revision == resolved.revision + 1
    desk.detect(510.0, cleared=True)
    desk.tick(600.0)
    (later,) = desk.detect(600.0 + 901)  # past the reopen window: a new incident
    assert later.transition is Transition.OPENED and later.id != opened.id


def test_flapping__too_many_raises_hold_notifications_back_until_it_settles():
    desk = Desk()
    events = []
    for i in range(5):  # raise/clear every 20 s: threshold 3 within 600 s
        events += desk.detect(100.0 + 20 * i)
        desk.detect(110.0 + 20 * i, cleared=True)
    assert [e.flapping for e in events] == [False, False, False, True, True]
    assert [e.notify for e in events] == [True, True, True, False, False]
    assert len({e.id for e in events}) == 1
    (settled,) = desk.tick(100.0 + 80 + 601)  # no raise within the flap window
    assert (settled.transition, settled.flapping, settled.notify) == (
        Transition.RESOLVED,
        False,
        True,
    )


def test_flapping__clears_on_a_tick_while_still_open():
    desk = Desk(POLICY.model_copy(update={"quiet_period_s": 10_000}))
    for i in range(5):
        desk.detect(100.0 + 20 * i)
        desk.detect(110.0 + 20 * i, cleared=True)
    assert desk.state.tracked[0].incident.flapping
    (update,) = desk.tick(800.0)
    assert (update.transition, update.flapping) == (Transition.UPDATED, False)


def silence(matchers: dict[str, str], starts: float = 0.0, ends: float = 1000.0) -> Silence:
    return Silence(
        id="sil-1", matchers=matchers, starts_at=starts, ends_at=ends, created_by="t", created_at=0
    )


def test_silence__matching_incidents_are_recorded_silenced_and_notify_nobody():
    desk = Desk()
    desk.silences = [silence({"model": "fraud*", "labels.service": "fraud-api"})]
    (opened,) = desk.detect(100.0)
    assert (opened.silenced_by, opened.notify) == ("sil-1", False)
    desk.silences = [silence({"model": "other"})]
    (unsilenced,) = desk.tick(120.0)
    assert (unsilenced.transition, unsilenced.silenced_by, unsilenced.notify) == (
        Transition.UPDATED,
        None,
        True,
    )


def test_silence__expiry_and_late_silences_are_applied_by_ticks():
    desk = Desk(POLICY.model_copy(update={"quiet_period_s": 10_000}))
    (opened,) = desk.detect(100.0)
    assert opened.notify
    desk.silences = [silence({"kind": "latency_*"}, starts=0, ends=200)]
    (silenced,) = desk.tick(110.0)
    assert silenced.silenced_by == "sil-1"
    assert desk.tick(150.0) == []
    (expired,) = desk.tick(200.0)
    assert expired.silenced_by is None


def test_changes__a_version_going_live_shortly_before_is_linked_as_likely_cause():
    desk = Desk()
    change = Change(
        kind="model_version_change", model="fraud", version="8", previous_version="7", at=10.0
    )
    assert desk.manager.on_change(desk.state, change, 10.0) == []
    desk.manager.on_change(desk.state, change, 11.0)  # seen by two workers: kept once
    (opened,) = desk.detect(250.0)
    assert opened.changes == [change]
    assert opened.likely_cause == "fraud v8 went live (was v7) 4 min before"
    assert "Likely cause: fraud v8 went live (was v7) 4 min before" in incident_text(opened)


def test_acknowledge_and_resolve_by_hand():
    desk = Desk()
    (opened,) = desk.detect(100.0)
    acked = desk.manager.acknowledge(desk.state, opened.id, "alice", 120.0)
    assert (acked.status, acked.transition, acked.acknowledged_by) == (
        Status.ACKNOWLEDGED,
        Transition.ACKNOWLEDGED,
        "alice",
    )
    with pytest.raises(IncidentStateError, match="already acknowledged"):
        desk.manager.acknowledge(desk.state, opened.id, "bob", 121.0)
    resolved = desk.manager.resolve(desk.state, opened.id, "alice", 130.0)
    assert (resolved.resolution, resolved.resolved_by) == (Resolution.MANUAL, "alice")
    assert incident_text(resolved).splitlines()[0] == (
        ":white_check_mark: [RESOLVED] Latency spike on fraud-api by alice"
    )
    with pytest.raises(IncidentStateError, match="already resolved"):
        desk.manager.resolve(desk.state, opened.id, "alice", 131.0)
    with pytest.raises(IncidentStateError, match="no incident inc-nope"):
        desk.manager.acknowledge(desk.state, "inc-nope", "alice", 131.0)


def test_state_is_forgotten_once_nothing_can_reopen_or_flap():
    desk = Desk()
    desk.detect(100.0)
    desk.detect(110.0, cleared=True)
    desk.tick(200.0)
    assert not desk.state.empty
    desk.tick(200.0 + 901)
    assert desk.state.empty


def test_incident_text__names_subject_and_observed_vs_normal():
    (incident,) = Desk().detect(1795255200.0)
    assert incident_text(incident).splitlines() == [
        ":rotating_light: [CRITICAL] Latency spike on fraud-api",
        "Subject: fraud-api / model fraud v7",
        "Since: 2026-11-21 10:00:00Z",
        f"{LATENCY}: observed 400.0 vs normal 50.0 (8.0x), detector LatencySpike",
        f"Incident {incident.id} (open, 1 detection)",
    ]


def test_escalation__a_signal_growing_while_it_lasts_escalates_once():
    desk = Desk()
    (opened,) = desk.detect(100.0, observed=120.0)
    assert opened.severity is Severity.WARNING
    assert desk.detect(130.0, observed=150.0, refresh=True) == []
    (escalated,) = desk.detect(160.0, observed=300.0, refresh=True)  # 6x its baseline of 50
    assert (escalated.transition, escalated.severity, escalated.count) == (
        Transition.ESCALATED,
        Severity.CRITICAL,
        1,
    )
    assert desk.detect(190.0, observed=320.0, refresh=True) == []


def test_changes__are_kept_by_worker_time_so_old_event_times_survive_ticks():
    desk = Desk()
    old = Change(kind="model_version_change", model="fraud", version="8", at=10.0)  # a replay
    desk.manager.on_change(desk.state, old, 5000.0)
    assert desk.tick(5001.0) == []
    desk.round_trip()
    (opened,) = desk.detect(250.0)  # event time 4 min after the change
    assert opened.changes == [old]
    desk2 = Desk()
    desk2.manager.on_change(desk2.state, old, 5000.0)
    desk2.tick(5000.0 + 3601)  # the change window of worker time passed
    assert desk2.state.empty


def test_escalate__a_failed_remediation_makes_the_incident_critical():
    desk = Desk()
    (opened,) = desk.detect(100.0, observed=120.0)
    escalated = desk.manager.escalate(desk.state, opened.id, "playbook rollback")
    assert (escalated.transition, escalated.severity, escalated.labels["escalated_by"]) == (
        Transition.ESCALATED,
        Severity.CRITICAL,
        "playbook rollback",
    )

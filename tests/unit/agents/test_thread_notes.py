"""Step-result replies and reminders for unacknowledged critical incidents (pure parts)."""

from __future__ import annotations

from agents.slack.thread_notes import ReminderPolicy, due_reminders
from fireline.incident import Severity, Status
from playbooks.chat.sinks import MessageRef
from playbooks.chat.thread_messages import reminder_message, step_results_message
from playbooks.chat.threads import ThreadRoot
from playbooks.steps import Outcome, StepRecord
from tests.factories import make_incident

POLICY = ReminderPolicy(after_s=600.0, limit=2, mention="<!here>")
INCIDENT = make_incident(first_seen=1000.0)  # critical and open
ROOT = ThreadRoot("#oncall", MessageRef("C1", "1.0"), "1.0", posted_at=1000.0)


def due(root=ROOT, now=1600.0, owned=lambda _: True, **changes):
    incident = INCIDENT.model_copy(update=changes)
    return due_reminders([(incident.id, root)], {incident.id: incident}, now, POLICY, owned)


def test_step_results__lists_what_ran_failed_or_was_refused_and_skips_the_rest():
    records = [
        StepRecord("p", "notify", "slack", Outcome.OK, "posted 1.0"),
        StepRecord(
            "p",
            "rollback",
            "rollback",
            Outcome.OK,
            "champion → v7",
            target="fraud",
            approved_by="slack:alice",
        ),
        StepRecord("p", "page", "pagerduty", Outcome.FAILED, "HTTP 500", attempts=3),
        StepRecord("p", "retrain", "retrain", Outcome.REJECTED, "rejected by slack:bob"),
        StepRecord("p", "only-if", "webhook", Outcome.SKIPPED, "when was false"),
        StepRecord("p", "gate", "rollback", Outcome.PENDING_APPROVAL, "waiting"),
    ]
    message = step_results_message(records)
    assert message is not None
    assert message.text.splitlines() == [
        "Playbook steps:",
        ":white_check_mark: p/rollback (fraud): champion → v7, approved by slack:alice",
        ":x: p/page (pagerduty): HTTP 500 (3 attempts)",
        ":no_entry: p/retrain (retrain): rejected by slack:bob",
    ]


def test_step_results__nothing_to_say_is_no_message():
    only_chat = [StepRecord("p", "notify", "slack", Outcome.OK, "posted")]
    assert step_results_message(only_chat) is None


def test_reminder_message__says_how_long_and_how_to_take_it():
    text = reminder_message(INCIDENT, "<!subteam^S1>", 1000.0 + 1800, 2).text
    assert text.startswith(":alarm_clock: <!subteam^S1> Reminder 2: [CRITICAL]")
    assert "unacknowledged for 30 min" in text and f"fireline incidents ack {INCIDENT.id}" in text


def test_due__a_critical_open_incident_quiet_for_the_interval():
    assert due() == [(INCIDENT, ROOT)]
    assert due(now=1599.0) == []


def test_not_due__acknowledged_resolved_not_critical_silenced_or_not_owned():
    assert due(status=Status.ACKNOWLEDGED) == []
    assert due(status=Status.RESOLVED) == []
    assert due(severity=Severity.WARNING) == []
    assert due(silenced_by="sil-1") == []
    assert due(owned=lambda _: False) == []


def test_due__counts_from_the_last_reminder_and_stops_at_the_limit():
    once = ThreadRoot("#oncall", ROOT.ref, "1.0", 1000.0, nudged_at=1600.0, reminders=1)
    assert due(root=once, now=2199.0) == [] and due(root=once, now=2200.0) == [(INCIDENT, once)]
    twice = ThreadRoot("#oncall", ROOT.ref, "1.0", 1000.0, nudged_at=2200.0, reminders=2)
    assert due(root=twice, now=99999.0) == []


def test_reminders_off__nothing_is_due():
    off = ReminderPolicy(after_s=0)
    incidents = {INCIDENT.id: INCIDENT}
    assert due_reminders([(INCIDENT.id, ROOT)], incidents, 1e9, off, lambda _: True) == []

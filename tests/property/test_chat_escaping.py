"""Event data is data, never markup: no Slack control sequence survives from a label value.

Any string a producer controls (label values, model, service, series, the
detector's words, who acknowledged) is put into every field of an incident
and every message fireline builds from it: root messages in each status,
thread replies, approvals, step results, dry-run summaries and reminders.
Fireline's own text here has no ``<`` (no links, no mention given), so any
``<`` or a stray entity would have come from the data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fireline.incident import (
    Change,
    Evidence,
    EvidencePoint,
    Incident,
    Resolution,
    Signal,
    Status,
    Transition,
)
from playbooks.approvals import ApprovalRequest, Decision
from playbooks.chat.blocks import (
    SlackMessage,
    approval_decided_message,
    approval_message,
    root_message,
)
from playbooks.chat.messages import incident_text
from playbooks.chat.thread_messages import dry_run_message, reminder_message, step_results_message
from playbooks.steps import Outcome, StepRecord
from tests.factories import make_incident

CONTROL = re.compile(r"<[!@#]|<https?:|<mailto:|\|[^>]*>")
ATTACK = "<!channel> <https://evil.example|Open runbook> <@U0123> &lt;!here&gt;"

values = st.text(
    alphabet=st.sampled_from("<>&|!@#:/ abcHTPS-_.$`*~") | st.characters(codec="utf-8"),
    min_size=1,
    max_size=60,
)


def incident_carrying(value: str, **overrides: Any) -> Incident:
    signal = Signal(
        detector=f"latency_spike {value}",
        series=f'latency_ms{{service="{value}"}}',
        selector=f'latency_ms{{service="{value}"}}',
        observed=900.0,
        baseline=100.0,
        score=0.99,
        at=1795255260.0,
        message=f"category {value} unseen",
        kind="latency_spike",
    )
    cleared = signal.model_copy(update={"cleared": True, "observed": 101.0})
    return make_incident(
        title=f"latency_ms of {value} is 9x its baseline",
        service=value,
        model=value,
        model_version=value,
        labels={"service": value},
        signals=[signal, cleared],
        evidence=[
            Evidence(
                series=signal.series,
                baseline=100.0,
                detected_at=1795255260.0,
                points=[EvidencePoint(at=1795255200.0, value=100.0)],
            )
        ],
        changes=[Change(kind="model_version_change", model=value, version=value, at=0.0)],
        likely_cause=f"{value} v{value} went live",
        acknowledged_by=value,
        resolved_by=value,
        **overrides,
    )


def texts(message: SlackMessage | str | Any) -> Iterator[str]:
    """Every string a message carries: its text and every string in its blocks."""
    if isinstance(message, str):
        yield message
    elif isinstance(message, SlackMessage):
        yield message.text
        yield from texts(message.blocks)
    elif isinstance(message, dict):
        for key, item in message.items():
            if key not in {"action_id", "block_id", "value"}:  # ids, never shown as text
                yield from texts(item)
    elif isinstance(message, list):
        for item in message:
            yield from texts(item)


def messages(value: str) -> Iterator[SlackMessage | str]:
    for status, transition, resolution in [
        (Status.OPEN, Transition.OPENED, None),
        (Status.ACKNOWLEDGED, Transition.ACKNOWLEDGED, None),
        (Status.RESOLVED, Transition.RESOLVED, Resolution.MANUAL),
        (Status.RESOLVED, Transition.RESOLVED, Resolution.NEW_NORMAL),
        (Status.RESOLVED, Transition.RESOLVED, Resolution.RECOVERED),
        (Status.RESOLVED, Transition.RESOLVED, Resolution.QUIET),
    ]:
        incident = incident_carrying(
            value, status=status, transition=transition, resolution=resolution
        )
        yield root_message(incident)
        yield incident_text(incident)
    incident = incident_carrying(value)
    request = ApprovalRequest(
        id="apr-1",
        incident=incident,
        playbook="rollback",
        step_index=0,
        step="roll back",
        action="rollback",
        params={"model": value, "note": value},
        requested_at=0.0,
    )
    params = json.dumps(request.params)
    yield approval_message(request, params)
    yield approval_decided_message(request.decided(Decision.APPROVED, value, 1.0), params)
    record = StepRecord(
        "rollback",
        "roll back",
        "webhook",
        Outcome.FAILED,
        f"HTTP 500 from server: {value}",
        params={"url": value},
        target=f"webhook:{value}",
        approved_by=value,
    )
    yield step_results_message([record]) or ""
    yield dry_run_message("rollback", incident, [record])
    yield reminder_message(incident, "", 1795259000.0, 1)


def unescaped(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@settings(max_examples=150, deadline=None)
@given(values)
@example(ATTACK)
@example("<!channel> <https://evil.example|Open runbook>")
def test_no_control_sequence_survives_from_a_label_value(value: str):
    for message in messages(value):
        for text in texts(message):
            assert "<" not in text and ">" not in text, text
            assert not CONTROL.search(text), text
            # Every & is an entity Slack decodes, so nothing it shows was cut or doubled.
            assert re.fullmatch(r"([^&]|&(amp|lt|gt);)*", text, re.DOTALL), text


@given(values)
@settings(max_examples=50, deadline=None)
def test_the_value_still_reads_as_itself_once_slack_decodes_it(value: str):
    root = root_message(incident_carrying(value))
    subject = next(
        f["text"] for b in root.blocks for f in b.get("fields", []) if "*Subject*" in f["text"]
    )
    assert unescaped(subject).endswith(f"{value} / model {value} v{value}")

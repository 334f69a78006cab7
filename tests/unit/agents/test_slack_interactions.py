"""The button payload handling both transports share, and Socket Mode's envelope handling."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from agents.incidents.access import AccessPolicy
from agents.incidents.api import IncidentApi
from agents.incidents.view import IncidentView
from agents.settings import Topics
from agents.slack.approvers import SlackApprovers
from agents.slack.interactions import SlackInteractions
from agents.slack.socket_mode import SlackSocketMode, _SdkLogFilter
from fireline.incident import Status
from playbooks.approvals import ApprovalRequest
from tests.factories import make_incident

TOKEN = "xapp-1-unit-test-token"


class RecordingPublisher:
    """Keeps what would go to Kafka: (topic, key, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes, Any]]) -> None:
        self.sent.extend((topic, key, json.loads(value)) for key, value, _ in records)


NOW = 1795255300.0


def make_buttons(
    *incidents: Any,
    approvals: Sequence[ApprovalRequest] = (),
    approvers: SlackApprovers | None = None,
    approval_ttl_s: float = 0.0,
) -> SlackInteractions:
    view = IncidentView()
    view.incidents.update({i.id: i for i in incidents})
    view.approvals.update({a.id: a for a in approvals})
    api = IncidentApi(
        view, RecordingPublisher(), Topics(), AccessPolicy({}), lambda: NOW, approval_ttl_s
    )
    return SlackInteractions(
        api,
        signing_secret=None,
        clock=lambda: NOW,
        approvers=approvers if approvers is not None else SlackApprovers(["U1", "U42"]),
    )


def published(buttons: SlackInteractions) -> list[tuple[str, bytes, dict[str, Any]]]:
    publisher = buttons.api.publisher
    assert isinstance(publisher, RecordingPublisher)
    return publisher.sent


def block_actions(*action_ids: str, user: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": user if user is not None else {"id": "U1", "username": "alice"},
        "actions": [{"action_id": a, "type": "button"} for a in action_ids],
    }


async def test_handle_payload__acknowledge_publishes_the_command_by_the_slack_user():
    incident = make_incident()
    buttons = make_buttons(incident)

    notes = await buttons.handle_payload(block_actions(f"ack:{incident.id}"))

    assert notes == f"acknowledge {incident.id} by slack:alice"
    [(topic, key, command)] = published(buttons)
    assert (topic, key) == ("fireline.detections", incident.subject_key.encode())
    assert command == {
        "type": "command",
        "command": "acknowledge",
        "incident_id": incident.id,
        "by": "slack:alice",
    }


async def test_handle_payload__notes_every_button_and_changes_only_what_applies():
    open_incident = make_incident()
    resolved = make_incident(id="inc-resolved", status=Status.RESOLVED)
    buttons = make_buttons(open_incident, resolved)

    notes = await buttons.handle_payload(
        block_actions(
            f"resolve:{open_incident.id}",
            "ack:inc-resolved",
            "ack:inc-nope",
            "approve:apr-nope",
            "no-colon",
            user={"id": "U42"},
        )
    )

    assert notes.split("; ")[:4] == [
        f"resolve {open_incident.id} by slack:U42",
        "incident inc-resolved is already resolved",
        "no incident inc-nope",
        "no approval apr-nope",
    ]
    assert len(notes.split("; ")) == 5
    assert [c["command"] for _, _, c in published(buttons)] == ["resolve"]


async def test_handle_payload__without_actions_does_nothing():
    buttons = make_buttons(make_incident())
    assert await buttons.handle_payload({"type": "block_actions", "actions": "x"}) == ""
    assert await buttons.handle_payload({}) == ""
    assert published(buttons) == []


class RecordingSocketClient:
    """Stands in for the SDK client's one method the request listener uses."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.responses.append(response.to_dict())


async def test_socket_request__block_actions_is_acked_then_applied():
    incident = make_incident()
    buttons = make_buttons(incident)
    service = SlackSocketMode(buttons, TOKEN, "http://127.0.0.1:1/api/")
    client = RecordingSocketClient()
    request = SocketModeRequest("interactive", "env-1", block_actions(f"ack:{incident.id}"))

    await service._on_request(client, request)  # type: ignore[arg-type]

    assert client.responses == [{"envelope_id": "env-1"}]
    assert [c["command"] for _, _, c in published(buttons)] == ["acknowledge"]


async def test_socket_request__other_kinds_are_acked_and_ignored():
    incident = make_incident()
    buttons = make_buttons(incident)
    service = SlackSocketMode(buttons, TOKEN, "http://127.0.0.1:1/api/")
    client = RecordingSocketClient()
    payload = block_actions(f"ack:{incident.id}")

    for request in (
        SocketModeRequest("events_api", "env-1", payload),
        SocketModeRequest("interactive", "env-2", {**payload, "type": "view_submission"}),
        SocketModeRequest("slash_commands", "env-3", {"command": "/fireline"}),
    ):
        await service._on_request(client, request)  # type: ignore[arg-type]

    assert [r["envelope_id"] for r in client.responses] == ["env-1", "env-2", "env-3"]
    assert published(buttons) == []


def sdk_record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("sdk", logging.ERROR, __file__, 1, message, None, exc_info)


def test_sdk_log_filter__hides_the_token_and_keeps_one_line():
    refused = SlackApiError("The request to the Slack API failed.", {"error": "invalid_auth"})
    record = sdk_record(f"Failed to connect (error: {refused}); token {TOKEN}", refused)

    assert _SdkLogFilter(TOKEN).filter(record)

    assert TOKEN not in record.getMessage()
    assert "\n" not in record.getMessage()
    assert "invalid_auth" in record.getMessage()
    assert record.exc_info is None  # the message names the error; no traceback per retry


def test_sdk_log_filter__keeps_the_traceback_of_unexpected_errors():
    record = sdk_record("Failed to run a request listener", KeyError("x"))
    assert _SdkLogFilter(TOKEN).filter(record)
    assert record.exc_info is not None


async def test_handle_payload__only_a_press_that_changed_nothing_is_told_back():
    incident = make_incident()
    buttons = make_buttons(incident)
    url = "http://127.0.0.1:9/actions/T1/B2/xyz"  # nothing listens: the reply fails quietly

    await buttons.handle_payload({**block_actions(f"ack:{incident.id}"), "response_url": url})
    assert not buttons._replies, "an applied press needs no explanation"
    await buttons.handle_payload({**block_actions("ack:inc-unknown"), "response_url": url})
    assert len(buttons._replies) == 1
    await asyncio.gather(*buttons._replies)


def pending_approval(requested_at: float = NOW - 60) -> ApprovalRequest:
    return ApprovalRequest(
        id="apr-1",
        incident=make_incident(),
        playbook="rollback",
        step_index=0,
        step="roll back",
        action="rollback",
        requested_at=requested_at,
    )


async def test_approve__by_an_approver_publishes_the_decision_as_the_slack_user():
    buttons = make_buttons(approvals=[pending_approval()])

    notes = await buttons.handle_payload(block_actions("approve:apr-1"))

    assert notes == "approved apr-1 by slack:alice"
    [(topic, _, decided)] = published(buttons)
    assert (topic, decided["status"], decided["decided_by"]) == (
        "fireline.approvals",
        "approved",
        "slack:alice",
    )


async def test_approve__by_a_user_not_on_the_approvers_list_is_refused():
    buttons = make_buttons(approvals=[pending_approval()], approvers=SlackApprovers(["U9"]))

    notes = await buttons.handle_payload(block_actions("approve:apr-1", "reject:apr-1"))

    refusal = "slack:alice may not decide approvals: ask one of the approvers"
    assert notes == f"{refusal} (FIRELINE_SLACK_APPROVERS); {refusal} (FIRELINE_SLACK_APPROVERS)"
    assert published(buttons) == []


async def test_approve__a_member_of_an_approver_user_group_may_decide():
    asked: list[str] = []

    async def members(group: str) -> set[str]:
        asked.append(group)
        return {"U1"} if group == "S0APPROVERS" else set()

    approvers = SlackApprovers(["S0APPROVERS", "U9"], members)
    buttons = make_buttons(approvals=[pending_approval()], approvers=approvers)

    assert await buttons.handle_payload(block_actions("reject:apr-1")) == (
        "rejected apr-1 by slack:alice"
    )
    assert not await approvers.allows("U2")
    assert not await approvers.allows(None)
    assert asked == ["S0APPROVERS"]  # remembered for a minute


async def test_approve__an_expired_approval_is_refused_even_to_an_approver():
    buttons = make_buttons(approvals=[pending_approval(NOW - 3601)], approval_ttl_s=3600)

    notes = await buttons.handle_payload(block_actions("approve:apr-1"))

    assert notes == ("approval apr-1 expired: nobody decided within 60 min; it counts as rejected")
    assert published(buttons) == []

"""The button payload handling both transports share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agents.incident_api import IncidentApi
from agents.incident_view import IncidentView
from agents.settings import Topics
from agents.slack_interactions import SlackInteractions
from playbooks.approvals import ApprovalRequest
from playbooks.incident import Status
from tests.factories import make_incident


class RecordingPublisher:
    """Keeps what would go to Kafka: (topic, key, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def publish(self, topic: str, records: Sequence[tuple[bytes, bytes, Any]]) -> None:
        self.sent.extend((topic, key, json.loads(value)) for key, value, _ in records)


def make_buttons(*incidents: Any, approvals: Sequence[ApprovalRequest] = ()) -> SlackInteractions:
    view = IncidentView()
    view.incidents.update({i.id: i for i in incidents})
    view.approvals.update({a.id: a for a in approvals})
    api = IncidentApi(view, RecordingPublisher(), Topics(), api_token=None)
    return SlackInteractions(api, signing_secret=None, clock=lambda: 1795255300.0)


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

"""Publishing action events to Kafka through the worker's publisher.

``context.events`` is whatever the worker gave its action context: in
production the app's FaustPublisher (its producer, waiting for broker acks,
retrying transient errors). Records are keyed by incident id so every event
about one incident lands on one partition, in order.
"""

from __future__ import annotations

from typing import Any

from fireline.errors import BrokerError
from fireline.incident import Incident
from playbooks.actions.http import json_bytes
from playbooks.context import ActionContext, Record
from playbooks.registry import ActionResult


def incident_json(incident: Incident) -> dict[str, Any]:
    """The incident as the JSON object ``fireline.incidents`` carries."""
    return incident.model_dump(mode="json")


async def publish_event(
    action: str, context: ActionContext, topic: str, incident: Incident, event: dict[str, Any]
) -> ActionResult:
    """Publish ``event`` keyed by the incident id; a broker failure is a failed result."""
    publisher = context.require(context.events, "Kafka publisher")
    record: Record = (incident.id.encode(), json_bytes(event), {"fireline-action": action.encode()})
    try:
        await publisher.publish(topic, [record])
    except BrokerError as exc:
        return ActionResult(
            action, ok=False, detail=f"not published to {topic}: {exc}", target=topic
        )
    return ActionResult(action, ok=True, detail=f"published to {topic}", target=topic)

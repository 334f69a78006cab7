"""The ``kafka`` action: publish an event (default: the incident) keyed by incident id."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from fireline.incident import Incident
from playbooks.actions.events import incident_json, publish_event
from playbooks.context import ActionContext
from playbooks.registry import ActionParams, ActionRegistry, ActionResult


class KafkaParams(ActionParams):
    """Params of the ``kafka`` action."""

    topic: str = Field(min_length=1, description="Topic to publish to.")
    event: dict[str, Any] | None = Field(
        default=None, description="JSON object to publish instead of the incident."
    )


def register(registry: ActionRegistry) -> None:
    """Add the kafka action to ``registry``."""

    @registry.action("kafka")
    async def kafka(
        incident: Incident, params: KafkaParams, context: ActionContext
    ) -> ActionResult:
        event = params.event if params.event is not None else incident_json(incident)
        return await publish_event("kafka", context, params.topic, incident, event)

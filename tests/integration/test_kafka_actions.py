"""kafka, rollback kafka and retrain kafka through the worker's real FaustPublisher and broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest

from agents.kafka.broker import create_topics
from agents.service.app import FaustPublisher
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.registry import ActionResult
from tests.factories import make_incident
from tests.integration.support import consume, unique


@pytest.fixture
async def publisher(broker, tmp_path) -> AsyncIterator[FaustPublisher]:
    """The publisher the worker wires in, on a started Faust producer (no agents, no group)."""
    app = faust.App(unique("actions"), broker=broker.url, datadir=str(tmp_path), web_enabled=False)
    await app.producer.start()
    try:
        yield FaustPublisher(app, retries=1, first_backoff_s=0.1)
    finally:
        await app.producer.stop()


async def run(action: str, params: dict[str, Any], publisher: FaustPublisher) -> ActionResult:
    registered = default_registry().get(action)
    validated = registered.params_model.model_validate(params)
    return await registered.run(make_incident(), validated, ActionContext(events=publisher))


async def read_one(broker, topic: str) -> Any:
    [message] = await asyncio.to_thread(consume, broker.bootstrap_servers, topic, 1, 20.0)
    assert message.key() == b"inc-0123456789abcdef"
    return message


async def test_kafka__publishes_the_incident_keyed_by_id(broker, publisher):
    topic = unique("t.incident-copy")
    await create_topics(broker.bootstrap_servers, [topic], 1)
    result = await run("kafka", {"topic": topic}, publisher)
    assert result.ok, result.detail
    assert result.target == topic
    message = await read_one(broker, topic)
    assert json.loads(message.value())["title"] == "latency_ms of fraud-api is 5x its baseline"
    assert dict(message.headers()) == {"fireline-action": b"kafka"}


async def test_kafka__custom_event(broker, publisher):
    topic = unique("t.custom")
    await create_topics(broker.bootstrap_servers, [topic], 1)
    assert (await run("kafka", {"topic": topic, "event": {"page": "ml"}}, publisher)).ok
    assert json.loads((await read_one(broker, topic)).value()) == {"page": "ml"}


async def test_rollback_and_retrain_kafka__publish_commands(broker, publisher):
    topic = unique("t.commands")
    await create_topics(broker.bootstrap_servers, [topic], 1)
    rollback = await run(
        "rollback", {"provider": "kafka", "topic": topic, "to_version": "2"}, publisher
    )
    retrain = await run("retrain", {"provider": "kafka", "topic": topic}, publisher)
    assert rollback.ok and retrain.ok, (rollback.detail, retrain.detail)
    messages = await asyncio.to_thread(consume, broker.bootstrap_servers, topic, 2, 20.0)
    events = [json.loads(m.value()) for m in messages]
    assert events[0] == {
        "command": "rollback",
        "model": "fraud",
        "current_version": "3",
        "target_version": "2",
        "incident_id": "inc-0123456789abcdef",
    }
    assert events[1]["command"] == "retrain"
    assert events[1]["model"] == "fraud"
    assert events[1]["incident"]["id"] == "inc-0123456789abcdef"

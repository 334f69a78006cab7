"""POST /webhooks/alertmanager on a real aiohttp server, publishing to a recording stand-in."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.incidents.alert_intake import AlertIntake
from agents.service.http import Readiness, build_web_app
from agents.service.runtime import OutRecord
from fireline.errors import BrokerError

TOKEN = "am-unit-test-token"
TOPIC = "fireline.detections"
FIRING = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "alertmanager" / "firing.json").read_text()
)


class RecordingPublisher:
    """Keeps what would go to Kafka; ``down`` makes it fail as the real one does."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.down = False

    async def publish(self, topic: str, records: Sequence[OutRecord]) -> None:
        if self.down:
            raise BrokerError(f"cannot publish {len(records)} records to {topic}")
        self.sent.extend((topic, key, json.loads(value)) for key, value, _ in records)


async def ready() -> Readiness:
    return Readiness({"all": True})


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


async def serve(intake: AlertIntake) -> TestClient[web.Request, web.Application]:
    app = build_web_app(CollectorRegistry(), ready, intake.add_routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(publisher: RecordingPublisher) -> AsyncIterator[TestClient[Any, Any]]:
    client = await serve(AlertIntake(publisher, TOPIC, TOKEN))
    yield client
    await client.close()


async def post(
    client: TestClient[Any, Any], body: Any, token: str | None = TOKEN
) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    data = io.BytesIO(json.dumps(body).encode())  # large bodies, too, without a warning
    response = await client.post("/webhooks/alertmanager", data=data, headers=headers)
    return response.status, await response.json()


async def test_intake__publishes_each_alert_to_its_subjects_partition(client, publisher):
    two = {**FIRING, "alerts": [*FIRING["alerts"], {**FIRING["alerts"][0], "status": "resolved"}]}

    assert await post(client, two) == (200, {"accepted": 2})

    [(topic, key, first), (_, _, second)] = publisher.sent
    assert (topic, key, first["type"]) == (TOPIC, b"service:checkout", "detection")
    assert first["detection"]["kind"] == "alert:HighErrorRate"
    assert (first["detection"]["refresh"], second["detection"]["cleared"]) == (True, True)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing Authorization: Bearer <alertmanager token>"),
        ("guess", "wrong Alertmanager token"),
    ],
)
async def test_intake__without_the_right_token_is_401_and_publishes_nothing(
    client, publisher, token, message
):
    assert await post(client, FIRING, token) == (401, {"error": message})
    assert publisher.sent == []


async def test_intake__without_a_configured_token_is_disabled(publisher):
    client = await serve(AlertIntake(publisher, TOPIC, token=None))
    try:
        status, answer = await post(client, FIRING)
    finally:
        await client.close()

    assert (status, answer) == (
        401,
        {
            "error": "the Alertmanager intake is disabled: set FIRELINE_ALERTMANAGER_TOKEN "
            "(or alertmanager_token_file)"
        },
    )


async def test_intake__an_unusable_payload_is_400_naming_the_problem(client, publisher):
    status, answer = await post(client, {**FIRING, "version": "2"})

    assert status == 400
    assert answer["error"].startswith("webhook payload version '2' is not supported")
    assert publisher.sent == []


async def test_intake__bad_alerts_are_400_after_the_good_ones_are_published(client, publisher):
    nameless = {**FIRING["alerts"][0], "labels": {"job": "api"}}

    status, answer = await post(client, {**FIRING, "alerts": [nameless, *FIRING["alerts"]]})

    assert (status, answer) == (
        400,
        {
            "error": "1 alert(s) refused: "
            "alerts[0]: labels: Value error, the alertname label is missing",
            "accepted": 1,
        },
    )
    assert [key for _, key, _ in publisher.sent] == [b"service:checkout"]


async def test_intake__a_broker_outage_is_503_so_alertmanager_retries(client, publisher):
    publisher.down = True

    assert await post(client, FIRING) == (
        503,
        {"error": "cannot reach the Kafka broker; Alertmanager will retry"},
    )


async def test_intake__takes_payloads_beyond_the_apps_1_mib_up_to_its_own_cap(client, publisher):
    many = {**FIRING, "alerts": FIRING["alerts"] * 3000}  # about 2 MB
    assert len(json.dumps(many)) > 1024**2

    assert await post(client, many) == (200, {"accepted": 3000})

    small = await serve(AlertIntake(publisher, TOPIC, TOKEN, max_payload_bytes=1024 * 1024))
    try:
        status, answer = await post(small, many)
    finally:
        await small.close()
    assert status == 413
    assert answer["error"].startswith("payload larger than 1048576 bytes: set max_alerts")
    assert len(publisher.sent) == 3000, "nothing of the refused payload"

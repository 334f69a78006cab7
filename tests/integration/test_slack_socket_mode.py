"""Slack buttons over Socket Mode on real workers, against a loopback Socket Mode server.

The worker opens the websocket itself (no public endpoint); a press arrives as an
``interactive`` envelope, is acknowledged and applied. A refused app token leaves
the worker running, logging why without the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.kafka.broker import EmbeddedBroker
from tests.integration.support import SocketModeServer, WorkerProcess, wait_for, worker_env
from tests.integration.test_incidents import (
    EVERY_CHANGE,
    FAST_LIFECYCLE,
    TOKEN,
    samples,
    send,
    wait_for_transition,
)

pytestmark = pytest.mark.integration

APP_TOKEN = "xapp-1-socket-mode-token-never-logged"
WRONG_APP_TOKEN = "xapp-1-revoked-token-never-logged"


@pytest.fixture(scope="module")
def socket_slack() -> Iterator[SocketModeServer]:
    server = SocketModeServer(APP_TOKEN).start()
    yield server
    server.stop()


def start_worker(
    broker: EmbeddedBroker,
    socket_slack: SocketModeServer,
    app_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> WorkerProcess:
    directory = tmp_path_factory.mktemp("playbooks")
    (directory / "every-change.yaml").write_text(EVERY_CHANGE)
    env = worker_env(
        broker.url,
        None,  # no bot token: messages go to the console, Slack here is Socket Mode only
        directory,
        FIRELINE_SLACK_APP_TOKEN=app_token,
        FIRELINE_SLACK_BASE_URL=socket_slack.base_url,
        **FAST_LIFECYCLE,
    )
    return WorkerProcess(env, Path(tmp_path_factory.mktemp("worker")) / "worker.log").start()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    socket_slack: SocketModeServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    socket_slack.fail_handshakes = 1  # like a network blip during the first handshake
    process = start_worker(broker, socket_slack, APP_TOKEN, tmp_path_factory)
    yield process
    process.stop()


def test_failed_handshake__reconnects_with_a_fresh_url(worker, socket_slack):
    wait_for(lambda: socket_slack.connections() == 1, 30, f"the websocket; log:\n{worker.log()}")
    assert socket_slack.opens[:2] == [f"Bearer {APP_TOKEN}"] * 2
    first, *retries = socket_slack.tickets
    assert retries[-1] != first  # the ticket of the failed handshake is not retried forever


def test_acknowledge_over_socket_mode__acks_the_envelope_and_acknowledges(
    broker, worker, socket_slack
):
    wait_for(lambda: socket_slack.connections() == 1, 30, f"the websocket; log:\n{worker.log()}")
    service = "socket-button-api"
    send(broker, worker, samples(service, [(200, 48.0), (25, 420.0)], seed=41), service)
    [opened] = wait_for_transition(broker, worker, service, "opened", 40)
    incident_id = opened["id"]
    wait_for(
        lambda: worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)[0] == 200,
        15,
        "the incident in the worker's view",
    )

    ignored = "env-not-interactive"
    socket_slack.send({"envelope_id": ignored, "type": "events_api", "payload": {"x": 1}})
    envelope_id = socket_slack.press(f"ack:{incident_id}", "alice")

    wait_for(lambda: socket_slack.acked(envelope_id), 10, "the envelope's ack")
    wait_for(lambda: socket_slack.acked(ignored), 10, "the ack of the ignored envelope")
    wait_for(
        lambda: (
            worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)[1]["status"]
            == "acknowledged"
        ),
        15,
        f"the acknowledgement in the API; log:\n{worker.log()}",
    )
    _, shown = worker.request("GET", f"/incidents/{incident_id}", token=TOKEN)
    assert shown["acknowledged_by"] == "slack:alice"
    assert APP_TOKEN not in worker.log()


def test_worker_stop__closes_the_websocket(worker, socket_slack):
    wait_for(lambda: socket_slack.connections() == 1, 20, "the websocket")
    assert worker.stop() == 0
    wait_for(lambda: socket_slack.connections() == 0, 10, "the websocket closed")
    assert "Traceback" not in worker.log()


def test_refused_app_token__worker_keeps_working_and_logs_why_without_the_token(
    broker, socket_slack, tmp_path_factory
):
    refused = f"Bearer {WRONG_APP_TOKEN}"
    process = start_worker(broker, socket_slack, WRONG_APP_TOKEN, tmp_path_factory)
    try:
        # The client retries: at least two refused opens, and the worker stays ready.
        wait_for(lambda: socket_slack.opens.count(refused) >= 2, 20, "a retried open")
        assert process.get("/readyz")[0] == 200
        service = "socket-refused-api"
        send(broker, process, samples(service, [(200, 48.0), (25, 420.0)], seed=43), service)
        wait_for_transition(broker, process, service, "opened", 40)
        log = process.log()
        assert "invalid_auth" in log
        assert "Traceback" not in log  # one line per failed attempt, not a stack each time
        assert WRONG_APP_TOKEN not in log
        assert process.stop() == 0
    finally:
        process.stop()

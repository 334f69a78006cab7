"""The deploy loop end to end: real broker, real worker, real MLflow tracking server.

A worse v2 opens a version_regression incident, the shipped rollback playbook asks
for approval, the approval moves ``champion`` back to v1, and the incident is
verified once it resolves; an equally good v2 opens nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.kafka.broker import EmbeddedBroker
from tests.integration.mlflow_server import MlflowServer
from tests.integration.support import (
    WorkerProcess,
    consume,
    produce,
    unique,
    wait_for,
    worker_env,
)
from tests.integration.test_version_regression import predictions, regressions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
TOKEN = "deploy-loop-token"
PLAYBOOK = "prediction-drift-rollback"


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server.start(timeout_s=240.0)  # a loaded machine imports mlflow slowly
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, mlflow: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    directory = tmp_path_factory.mktemp("deploy-loop")
    playbooks = directory / "playbooks"
    playbooks.mkdir()
    shipped = (ROOT / "playbooks" / "library" / f"{PLAYBOOK}.yaml").read_text()
    # The shipped playbook as is, but verified within a test's patience, not 15 min.
    assert "resolved_within: 15m" in shipped
    (playbooks / f"{PLAYBOOK}.yaml").write_text(
        shipped.replace("resolved_within: 15m", "resolved_within: 40s")
    )
    env = worker_env(
        broker.url,
        None,
        playbooks,
        FIRELINE_API_TOKEN=TOKEN,
        MLFLOW_TRACKING_URI=mlflow.url,
        FIRELINE_INCIDENTS__TICK_S="0.5",
        FIRELINE_INCIDENTS__QUIET_PERIOD_S="2",
    )
    process = WorkerProcess(env, directory / "worker.log").start()
    yield process
    process.stop()


def incidents_of(worker: WorkerProcess, model: str) -> list[dict[str, Any]]:
    status, body = worker.request("GET", f"/incidents?model={model}", token=TOKEN)
    assert status == 200, body
    return list(body["incidents"])


def pending_rollbacks(worker: WorkerProcess, model: str) -> list[dict[str, Any]]:
    _, body = worker.request("GET", "/approvals?status=pending", token=TOKEN)
    return [
        a
        for a in body["approvals"]
        if a["playbook"] == PLAYBOOK and a["incident"]["model"] == model
    ]


def test_a_worse_version_is_rolled_back_to_the_compared_one_with_approval(
    broker: EmbeddedBroker, worker: WorkerProcess, mlflow: MlflowServer
) -> None:
    model = unique("fraud")
    mlflow.register(model, versions=2, alias="champion")  # v2 is live
    events = predictions(model, "1", 0, 4000, softness=0.0)
    events += predictions(model, "2", 4000, 3000, softness=0.4)
    produce(broker.bootstrap_servers, worker.topic("predictions"), events, key=model.encode())

    wait_for(lambda: bool(pending_rollbacks(worker, model)), 90, "the rollback's approval request")
    (incident,) = incidents_of(worker, model)
    assert (incident["kind"], incident["model_version"]) == ("version_regression", "2")
    assert incident["likely_cause"].startswith(f"{model} v2 went live (was v1) ")
    comparison = incident["comparison"]
    assert (comparison["baseline_version"], comparison["candidate_version"]) == ("1", "2")
    assert any(f["worse"] for f in comparison["figures"])
    assert mlflow.alias_version(model, "champion") == "2"  # nothing moves before approval

    (pending,) = pending_rollbacks(worker, model)
    status, decided = worker.request(
        "POST", f"/approvals/{pending['id']}/approve", {"by": "alice"}, TOKEN
    )
    assert (status, decided["status"]) == (200, "approved")
    wait_for(lambda: mlflow.alias_version(model, "champion") == "1", 30, "champion back on v1")

    # The deployer serves v1 again: v2, retired, clears its regression; the incident resolves.
    again = predictions(model, "1", 7000, 800, softness=0.0)
    produce(broker.bootstrap_servers, worker.topic("predictions"), again, key=model.encode())
    wait_for(lambda: incidents_of(worker, model)[0]["status"] == "resolved", 30, "the resolution")
    # The verify step runs at its deadline (40 s after the playbook ran).
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        4,
        90,
        where=lambda m: incident["id"].encode() in m.value(),
    )
    records = [json.loads(m.value()) for m in found]
    steps = [(r["step"], r["outcome"]) for r in records]
    assert steps == [
        ("slack", "ok"),
        ("rollback", "pending_approval"),
        ("rollback", "ok"),
        ("verify", "ok"),
    ], records
    rollback = next(r for r in records if r["step"] == "rollback" and r["outcome"] == "ok")
    assert rollback["detail"] == f"{model}@champion: v2 → v1"
    assert rollback["approved_by"] == "api"  # the token's name: the body's "by" is ignored


def test_an_equally_good_version_opens_nothing(
    broker: EmbeddedBroker, worker: WorkerProcess, mlflow: MlflowServer
) -> None:
    model = unique("retrained")
    mlflow.register(model, versions=2, alias="champion")
    topic = worker.topic("predictions")
    before = worker.metric("fireline_events_consumed_total", topic=topic)
    events = predictions(model, "1", 0, 4000, softness=0.0)
    events += predictions(model, "2", 4000, 3000, softness=0.0)
    produce(broker.bootstrap_servers, topic, events, key=model.encode())
    # A positive signal first: every event was handled and what it raised published.
    wait_for(
        lambda: (
            worker.metric("fireline_events_consumed_total", topic=topic) >= before + len(events)
        ),
        60,
        "every prediction consumed",
    )
    assert regressions(broker, worker, model, 5) == []
    changes = consume(
        broker.bootstrap_servers,
        worker.topic("detections"),
        1,
        10,
        where=lambda m: b'"model_version_change"' in m.value() and model.encode() in m.value(),
    )
    assert changes, "the deploy itself was seen"
    assert incidents_of(worker, model) == []
    assert pending_rollbacks(worker, model) == []
    assert mlflow.alias_version(model, "champion") == "2"


def test_accepting_the_worse_version_clears_its_regression_and_keeps_it_live(
    broker: EmbeddedBroker, worker: WorkerProcess, mlflow: MlflowServer
) -> None:
    model = unique("accepted")
    mlflow.register(model, versions=2, alias="champion")
    events = predictions(model, "1", 0, 4000, softness=0.0)
    events += predictions(model, "2", 4000, 3000, softness=0.4)
    produce(broker.bootstrap_servers, worker.topic("predictions"), events, key=model.encode())
    wait_for(lambda: bool(incidents_of(worker, model)), 90, "the version_regression incident")

    path = f"/models/{model}/versions/2/accept"
    assert worker.request("POST", path, {"by": "alice"})[0] == 401
    status, body = worker.request("POST", path, {"by": "alice"}, TOKEN)
    assert (status, body["accepted"]["version"], body["accepted"]["by"]) == (202, "2", "api")
    wait_for(
        lambda: incidents_of(worker, model)[0]["status"] == "resolved",
        30,
        "the accepted version's incident to resolve",
    )
    assert mlflow.alias_version(model, "champion") == "2"  # accepted: nothing rolled back

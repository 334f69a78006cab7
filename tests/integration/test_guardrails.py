"""Durable, fleet-wide guardrails, at-most-once steps and the kill switch, with real workers.

The deployer is a loopback stand-in speaking MLflow's registry REST API (alias
read, versions, alias set) plus a plain webhook endpoint; it counts every
request, so "at most once" is checked where the side effect lands.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from agents.kafka.broker import EmbeddedBroker, free_port
from agents.kafka.durable_table import partition_of
from agents.service.parts import TEST_EXIT_AFTER_ACTION
from fireline.incident import Incident
from tests.factories import make_incident
from tests.integration.support import WorkerProcess, consume, produce, unique, wait_for, worker_env

pytestmark = pytest.mark.integration

API_TOKEN = "guardrails-test-token"


@dataclass
class Deployer:
    """MLflow's alias API for one model (versions 1..3, champion at 3) and a webhook."""

    model: str
    champion: int = 3
    alias_moves: list[int] = field(default_factory=list)  # the version history of the alias
    hooks: list[dict[str, str]] = field(default_factory=list)  # headers of each webhook call
    lock: threading.Lock = field(default_factory=threading.Lock)
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        with self.lock:
            if path.endswith("/registered-models/alias") and method == "GET":
                return {"model_version": {"name": self.model, "version": str(self.champion)}}
            if path.endswith("/model-versions/search"):
                return {
                    "model_versions": [{"version": str(v), "status": "READY"} for v in (1, 2, 3)]
                }
            if path.endswith("/registered-models/alias") and method == "POST":
                self.champion = int(body["version"])
                self.alias_moves.append(self.champion)
                return {}
            return None

    def start(self) -> Deployer:
        deployer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.handle_call("GET")

            def do_POST(self) -> None:
                self.handle_call("POST")

            def handle_call(self, method: str) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if parts.path == "/hook":
                    with deployer.lock:
                        deployer.hooks.append(dict(self.headers))
                    reply: Any = {"ok": True}
                else:
                    reply = deployer.answer(
                        method, parts.path, dict(parse_qsl(parts.query)), json.loads(raw or b"{}")
                    )
                data = json.dumps(reply).encode()
                self.send_response(200 if reply is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def deployer() -> Iterator[Deployer]:
    running = Deployer(unique("fraud")).start()
    yield running
    running.stop()


def playbooks_dir(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "p.yaml").write_text(text)
    return directory


def incident_on(model: str, incident_id: str) -> Incident:
    """An opened incident of ``model`` v3; one fingerprint for every id."""
    return make_incident(
        id=incident_id, model=model, fingerprint=f"latency_spike|{model}|3|latency_ms"
    )


def ids_on_both_partitions(prefix: str, count: int) -> list[str]:
    """Incident ids alternating between partitions 0 and 1 (so both workers get some)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"{prefix}-{n}"
        if partition_of(candidate.encode(), 2) == len(found) % 2:
            found.append(candidate)
        n += 1
    return found


def publish(broker: EmbeddedBroker, worker: WorkerProcess, incident: Incident) -> None:
    produce(
        broker.bootstrap_servers,
        worker.topic("incidents"),
        [incident.model_dump_json().encode()],
        key=incident.id.encode(),
        partitioner="murmur2_random",  # the Java (and aiokafka) default, as the worker's own
    )


def audit_of(broker: EmbeddedBroker, worker: WorkerProcess, incident_id: str) -> dict[str, Any]:
    """The first audit record of ``incident_id`` (waits for it: the positive signal)."""
    found = consume(
        broker.bootstrap_servers,
        worker.topic("actions"),
        1,
        60.0,
        where=lambda m: m.key() == incident_id.encode(),
    )
    assert found, f"no audit record of {incident_id}:\n{worker.log()}"
    return dict(json.loads(found[0].value()))


ROLLBACK = """\
name: roll-back
match: {{kinds: [latency_spike]}}
cooldown: 1h
steps:
  - rollback: {{provider: mlflow, tracking_uri: "{url}", to_version: "1", check_version: false}}
"""


def test_cooldown__holds_across_two_workers_and_after_both_were_killed(broker, deployer, tmp_path):
    env = worker_env(broker.url, None, playbooks_dir(tmp_path, ROLLBACK.format(url=deployer.url)))
    second_env = {**env, "FIRELINE_HTTP_PORT": str(free_port())}
    workers = [
        WorkerProcess(env, tmp_path / "a.log").start(),
        WorkerProcess(second_env, tmp_path / "b.log").start(),
    ]
    try:
        wait_for(lambda: all(w.get("/readyz")[0] == 200 for w in workers), 60, "both ready")
        first, second, third = ids_on_both_partitions(unique("inc"), 3)
        publish(broker, workers[0], incident_on(deployer.model, first))
        ran = audit_of(broker, workers[0], first)
        assert (ran["action"], ran["outcome"]) == ("rollback", "ok"), ran
        publish(broker, workers[0], incident_on(deployer.model, second))  # the other worker's
        held = audit_of(broker, workers[0], second)
        assert held["outcome"] == "skipped" and held["detail"].startswith("cooldown"), held
        assert deployer.alias_moves == [1]

        for worker in workers:
            worker.stop(signal.SIGKILL)
        workers = [WorkerProcess(w.env, w.log_path).start() for w in workers]
        wait_for(lambda: all(w.get("/readyz")[0] == 200 for w in workers), 60, "both back")
        publish(broker, workers[0], incident_on(deployer.model, third))
        again = audit_of(broker, workers[0], third)
        assert again["outcome"] == "skipped" and again["detail"].startswith("cooldown"), again
        assert deployer.alias_moves == [1]  # still exactly one rollback
    finally:
        for worker in workers:
            worker.stop()


RECONCILED = """\
name: roll-back
match: {{kinds: [latency_spike]}}
steps:
  - rollback: {{provider: mlflow, tracking_uri: "{url}"}}
"""


def test_a_step_killed_between_its_side_effect_and_its_record_is_reconciled(
    broker, deployer, tmp_path
):
    directory = playbooks_dir(tmp_path, RECONCILED.format(url=deployer.url))
    env = worker_env(broker.url, None, directory, **{TEST_EXIT_AFTER_ACTION: "rollback"})
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    incident = incident_on(deployer.model, unique("inc"))
    publish(broker, worker, incident)
    assert worker.process is not None
    worker.process.wait(60)  # the hook killed it right after the alias moved
    assert worker.process.returncode == 137 and deployer.alias_moves == [2]

    restarted_env = {k: v for k, v in env.items() if k != TEST_EXIT_AFTER_ACTION}
    restarted = WorkerProcess(restarted_env, tmp_path / "worker.log").start()
    try:
        record = audit_of(broker, restarted, incident.id)
        assert (record["action"], record["outcome"]) == ("rollback", "ok"), record
        assert record["detail"].startswith("reconciled after a restart: "), record
        assert deployer.alias_moves == [2]  # moved exactly once: 3 → 2
    finally:
        restarted.stop()


WEBHOOK = """\
name: notify-deployer
match: {{kinds: [latency_spike]}}
steps:
  - webhook: {{url: "{url}/hook"}}
"""


def test_pause_holds_every_action_until_resumed(broker, deployer, tmp_path):
    directory = playbooks_dir(tmp_path, WEBHOOK.format(url=deployer.url))
    env = worker_env(broker.url, None, directory, FIRELINE_API_TOKEN=API_TOKEN)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        status, paused = worker.request(
            "POST", "/actions/pause", {"by": "mallory", "reason": "deploy freeze"}, API_TOKEN
        )
        assert status == 200 and paused["all_paused"], paused
        held_incident = incident_on(deployer.model, unique("inc"))
        publish(broker, worker, held_incident)
        held = audit_of(broker, worker, held_incident.id)
        assert (held["outcome"], held["detail"]) == (
            "held",
            "paused: all actions paused by api: deploy freeze",  # the token's name, not the body's,
        )
        assert deployer.hooks == []
        control = consume(
            broker.bootstrap_servers,
            worker.topic("actions"),
            1,
            15,
            where=lambda m: m.key() == b"kill-switch",
        )
        assert json.loads(control[0].value())["by"] == "api"

        status, resumed = worker.request("POST", "/actions/resume", {}, API_TOKEN)
        assert status == 200 and not resumed["all_paused"], resumed
        ran_incident = incident_on(deployer.model, unique("inc"))
        publish(broker, worker, ran_incident)
        ran = audit_of(broker, worker, ran_incident.id)
        assert (ran["action"], ran["outcome"]) == ("webhook", "ok"), ran
        (headers,) = deployer.hooks
        assert headers["Idempotency-Key"].startswith("fireline-")
        assert worker.request("POST", "/actions/pause", {"playbook": "nope"}, API_TOKEN)[0] == 404
    finally:
        worker.stop()

"""kill -9 of a worker at random points while incidents open and playbooks run.

Two workers share the group. Every service's series is warmed first (120 quiet
samples each) until its detector state is checkpointed in the state table, as
a series that has been running for a while is. Then each of ``ITERATIONS``
seeded rounds sends one service's latency spike (an incident whose playbook
posts to Slack, calls a webhook and asks a deployer to roll back) and one
malformed event, waits a random moment, and kills -9 a worker that is up (it
starts again at once). Afterwards, with both workers up: every input event is
accounted for (the group committed past all of them; the malformed ones are in
the dead-letter topic), each service has exactly one incident, and each side
effect happened at most once (requests counted at the loopback Slack, webhook
and deployer).

Why the warm-up comes first: a worker killed before a new series' first
checkpoint (``detection.checkpoint_s``) loses what its detector learnt, while
the group's committed offset already passed those samples, so the next owner
warms the series again on what is left of them. A spike inside that second
warm-up is learnt as normal and pages nobody (README "Status and known
limits"). The rounds test crashes during detection, incidents and playbooks of
series that were learnt, not that limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from agents.kafka.broker import EmbeddedBroker, free_port
from agents.pipelines.events import MetricEvent
from tests.chaos.kafka_probe import committed, committed_per_partition
from tests.chaos.stand_ins import HttpStandIn
from tests.integration.support import (
    SlackServer,
    WorkerProcess,
    consume,
    metric_event,
    produce,
    unique,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.kill9]

SEED = 20261128
ITERATIONS = 20
PARTITIONS = 2
WARMUP = 120  # quiet samples per service, sent and checkpointed before any kill
SPIKE = 20  # samples of each round's spike
START = 1795255200.0  # event time of the first sample
#: The at-most-once guarantee for side effects is built on branch `guardrails`
#: (issue 13, item 2); until it is merged a repeat is reported as an expected
#: failure naming it, and this flips to True with the merge.
AT_MOST_ONCE_BUILT = True

PLAYBOOK = """\
name: chaos-remediate
match: {{kinds: [latency_spike], transitions: [opened], services: ["chaos-*"]}}
steps:
  - slack: {{}}
  - webhook: {{url: "{hook}"}}
  - rollback: {{provider: http, url: "{deploy}", to_version: "6"}}
"""
STEPS = 3
#: Outcomes that end a playbook before its last step (``unknown``: the worker died
#: during the step and the target cannot say whether it acted).
STOPS = {"unknown", "failed", "rejected", "held"}


@dataclass
class ChaosRun:
    """What the rounds sent and did, and what came out."""

    services: list[str] = field(default_factory=list)
    good: int = 0
    bad: list[bytes] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)  # which worker, how long after the events
    incidents: dict[str, set[str]] = field(default_factory=dict)  # service → incident ids
    audit: Counter[tuple[str, str]] = field(default_factory=Counter)  # (incident, step) → records
    stopped: Counter[str] = field(default_factory=Counter)  # outcome → playbooks it ended early
    seconds: float = 0.0


def quiet(service: str, rng: np.random.Generator, start: float) -> list[bytes]:
    """The warm-up: ``WARMUP`` ordinary samples of ``service``'s latency, 0.1 s apart."""
    values = rng.normal(48, 2.5, WARMUP)
    return [
        metric_event(start + i * 0.1, round(float(v), 2), service) for i, v in enumerate(values)
    ]


def spike(service: str, rng: np.random.Generator, start: float) -> list[bytes]:
    """``SPIKE`` samples far above the warm-up's level, right after it."""
    values = rng.normal(420, 15, SPIKE)
    return [
        metric_event(start + (WARMUP + i) * 0.1, round(float(v), 2), service)
        for i, v in enumerate(values)
    ]


def series_key(event: bytes) -> bytes:
    """The key of the event's series in the detector-state table."""
    return MetricEvent.model_validate_json(event).series_key().encode()


def kill_9(worker: WorkerProcess) -> None:
    assert worker.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()


def running(workers: list[WorkerProcess], seen_ready: set[int]) -> list[WorkerProcess]:
    """The workers that were ready at least once since they started (pids in ``seen_ready``)."""
    for worker in workers:
        assert worker.process is not None
        if worker.process.pid not in seen_ready and worker.get("/readyz")[0] == 200:
            seen_ready.add(worker.process.pid)
    return [w for w in workers if w.process is not None and w.process.pid in seen_ready]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[HttpStandIn]:
    server = HttpStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chaos(
    broker: EmbeddedBroker,
    slack: SlackServer,
    stand_in: HttpStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ChaosRun, list[WorkerProcess]]]:
    playbooks = tmp_path_factory.mktemp("playbooks")
    (playbooks / "chaos.yaml").write_text(
        PLAYBOOK.format(hook=stand_in.url("/hook"), deploy=stand_in.url("/deploy"))
    )
    logs = tmp_path_factory.mktemp("workers")
    env = worker_env(
        broker.url,
        slack,
        playbooks,
        FIRELINE_PARTITIONS=str(PARTITIONS),
        # A member killed -9 leaves the group when its session times out, and Tansu
        # answers a join after half of it: shorter than the suite's 3 s, the rounds
        # restart faster. Heartbeats come from the consumer's own thread.
        FIRELINE_WORKER__SESSION_TIMEOUT_S="2",
        FIRELINE_WORKER__HEARTBEAT_INTERVAL_S="0.3",
        # The stand-in is not Slack: no reason to pace its 20 threads at 1 message/s.
        FIRELINE_SLACK_CHANNEL_RATE_PER_S="50",
        FIRELINE_SLACK_CHANNEL_BURST="50",
        # Each warmed series is checkpointed before the next is sent (see warm_up).
        FIRELINE_DETECTION__CHECKPOINT_S="1",
    )
    workers = [
        WorkerProcess({**env, "FIRELINE_HTTP_PORT": str(free_port())}, logs / f"{name}.log")
        for name in ("a", "b")
    ]
    for worker in workers:
        worker.launch()
    try:
        for worker in workers:
            worker.wait_ready()
        yield run_rounds(broker, workers, stand_in), workers
    finally:
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.stop()


def run_rounds(
    broker: EmbeddedBroker, workers: list[WorkerProcess], stand_in: HttpStandIn
) -> ChaosRun:
    rng, values = random.Random(SEED), np.random.default_rng(SEED)
    run, tag = ChaosRun(), unique("r")[2:]
    run.services = [f"chaos-{tag}-{i}" for i in range(ITERATIONS)]
    seen_ready: set[int] = set()
    metrics = workers[0].topic("metrics")
    started = time.monotonic()
    run.good += warm_up(broker, workers[0], run.services, values)
    for i, service in enumerate(run.services):
        bad = f'{{"broken": "{service}"'.encode()
        events = spike(service, values, START + i * 100)
        run.good += produce(broker.bootstrap_servers, metrics, events, key=service.encode())
        produce(broker.bootstrap_servers, metrics, [bad], key=service.encode())
        run.bad.append(bad)
        delay = rng.uniform(0.0, 2.5)  # detection, the incident, a step, or between them
        time.sleep(delay)
        # Kill a worker that got going (was ready since its start; it may be
        # rebalancing now): it owns partitions, opens incidents, runs steps.
        wait_for(lambda: bool(running(workers, seen_ready)), 90, "a running worker to kill")
        victim = rng.choice(running(workers, seen_ready))
        kill_9(victim)
        run.kills.append(f"{victim.log_path.stem} after {delay:.2f}s")
        victim.launch()
    for worker in workers:
        worker.wait_ready(90)
    try:
        settle(broker, workers, run, stand_in)
    except AssertionError as exc:
        dump_tasks(workers)
        logs = ", ".join(str(w.log_path) for w in workers)
        raise AssertionError(f"{exc}\n(each worker's asyncio tasks are dumped in {logs})") from None
    run.seconds = time.monotonic() - started
    return run


def dump_tasks(workers: list[WorkerProcess]) -> None:
    """Have each live worker write its threads' and asyncio tasks' stacks to its log.

    SIGUSR1 is the Faust (mode) worker's "cry": where a stuck agent waits.
    """
    alive = [w for w in workers if w.process is not None and w.process.poll() is None]
    for worker in alive:
        assert worker.process is not None
        os.kill(worker.process.pid, signal.SIGUSR1)
    with contextlib.suppress(AssertionError):  # a worker too stuck to dump is a finding too
        wait_for(lambda: all("TASKS" in w.log() for w in alive), 15, "the task dumps")


def warm_up(
    broker: EmbeddedBroker, worker: WorkerProcess, services: list[str], rng: np.random.Generator
) -> int:
    """Warm each service's series in turn, waiting for its detector's checkpoint alone.

    The positive signal is the series' key in the detector-state changelog. One
    series at a time, so that each checkpoint is a record batch of its own: the
    embedded broker (Tansu) reports a partition's end at the base offset of its
    last record batch + 1, so a restarted worker's table recovery stops at the
    first record of that batch, and checkpoints written together with others
    after it would be lost (docs/chaos.md).
    """
    changelog = f"{worker.env['FIRELINE_APP_ID']}-detector-state-changelog"
    reader = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": unique("state"),
            "enable.auto.commit": False,
        }
    )
    reader.assign([TopicPartition(changelog, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    saved: set[bytes] = set()

    def checkpointed(key: bytes) -> bool:
        message = reader.poll(0.2)
        if message is not None and message.error() is None:
            saved.add(message.key())
        return key in saved

    sent = 0
    try:
        for i, service in enumerate(services):
            events = quiet(service, rng, START + i * 100)
            key = series_key(events[0])
            sent += produce(
                broker.bootstrap_servers, worker.topic("metrics"), events, service.encode()
            )
            wait_for(lambda key=key: checkpointed(key), 60, f"the checkpoint of {key!r}")
    finally:
        reader.close()
    return sent


def settle(
    broker: EmbeddedBroker, workers: list[WorkerProcess], run: ChaosRun, stand_in: HttpStandIn
) -> None:
    """Wait until every event was processed and every playbook ran to its last step."""
    group, worker = workers[0].env["FIRELINE_APP_ID"], workers[0]
    total = run.good + len(run.bad)
    wait_for(
        lambda: (
            committed(broker.bootstrap_servers, group, worker.topic("metrics"), PARTITIONS) >= total
        ),
        120,
        f"the group to commit all {total} input events",
    )
    expected = len(run.services)

    def incidents_opened() -> bool:
        run.incidents = {}
        for message in consume(
            broker.bootstrap_servers, worker.topic("incidents"), 10**6, timeout_s=3
        ):
            incident = json.loads(message.value())
            if incident["transition"] == "opened" and incident.get("service") in run.services:
                run.incidents.setdefault(incident["service"], set()).add(incident["id"])
        return len(run.incidents) == expected

    wait_for(incidents_opened, 120, f"an incident for each of the {expected} services")

    ids = {i for found in run.incidents.values() for i in found}

    outcomes: dict[str, list[str]] = {}

    def playbooks_ended() -> bool:
        """Each incident's playbook reached the deployer, or stopped at a step it could not vouch for."""
        run.audit, run.stopped = Counter(), Counter()
        stopped = set()
        outcomes.clear()
        for message in consume(
            broker.bootstrap_servers, worker.topic("actions"), 10**6, timeout_s=3
        ):
            record = json.loads(message.value())
            if record.get("incident_id") in ids:
                run.audit[(record["incident_id"], record["step"])] += 1
                outcomes.setdefault(record["incident_id"], []).append(
                    f"{record['step']} {record['outcome']}"
                )
                if record["outcome"] in STOPS:
                    stopped.add(record["incident_id"])
                    run.stopped[record["outcome"]] += 1
        return ids <= stopped | set(stand_in.per_incident("/deploy"))

    try:
        wait_for(playbooks_ended, 120, "every incident's playbook to end")
    except AssertionError as exc:
        deployed = set(stand_in.per_incident("/deploy"))
        open_ = {i: outcomes.get(i, []) for i in ids - deployed}
        where = requests_of(broker, worker, set(open_))
        raise AssertionError(
            f"{exc}; not deployed (audit: steps and outcomes): {open_}; their records: {where}"
        ) from None


def requests_of(broker: EmbeddedBroker, worker: WorkerProcess, ids: set[str]) -> str:
    """Where the incidents' events and playbook requests are, against the group's commits."""
    group, found = worker.env["FIRELINE_APP_ID"], []
    for name in ("incidents", "action_requests"):
        topic = worker.topic(name)
        commits = committed_per_partition(broker.bootstrap_servers, group, topic, PARTITIONS)
        for message in consume(broker.bootstrap_servers, topic, 10**6, timeout_s=3):
            body = json.loads(message.value())
            incident = body.get("incident", body)
            if isinstance(incident, dict) and incident.get("id") in ids:
                found.append(
                    f"{name}[{message.partition()}]@{message.offset()} "
                    f"{incident['id']} r{incident.get('revision')} {incident.get('transition')}"
                )
        found.append(f"{name} committed {commits}")
    return "; ".join(found)


def test_kill_9__every_input_event_is_processed_or_dead_lettered(chaos, broker):
    run, workers = chaos
    group, metrics = workers[0].env["FIRELINE_APP_ID"], workers[0].topic("metrics")
    assert len(run.kills) == ITERATIONS
    assert committed(broker.bootstrap_servers, group, metrics, PARTITIONS) == run.good + len(
        run.bad
    )
    letters: set[bytes] = set()

    def dead_lettered() -> bool:
        topic = workers[0].topic("dead_letter")
        letters.update(m.value() for m in consume(broker.bootstrap_servers, topic, 10**6, 3))
        return set(run.bad) <= letters

    wait_for(dead_lettered, 30, "every malformed event in the dead-letter topic")
    audited = len(run.audit)
    print(
        f"\nCHAOS kill-9: {ITERATIONS} iterations, {len(run.kills)} kill -9 of a running "
        f"worker ({', '.join(run.kills)}), "
        f"{run.good} good + {len(run.bad)} malformed events all accounted for, "
        f"{audited}/{len(run.incidents) * STEPS} steps with an audit record, "
        f"playbooks stopped early: {dict(run.stopped) or 'none'}, "
        f"in {run.seconds:.0f}s"
    )


def test_kill_9__no_incident_is_duplicated(chaos):
    run, _ = chaos
    duplicated = {s: ids for s, ids in run.incidents.items() if len(ids) != 1}
    assert duplicated == {}
    assert sorted(run.incidents) == sorted(run.services)


def test_kill_9__each_side_effect_happened_at_most_once(chaos, slack, stand_in):
    run, _ = chaos
    ids = {next(iter(found)): service for service, found in run.incidents.items()}
    # A whole name: chaos-…-1 is also the start of chaos-…-10 to chaos-…-19.
    roots = Counter(
        service
        for body in slack.called("chat.postMessage")
        if not body.get("thread_ts")
        for service in run.services
        if re.search(rf"{re.escape(service)}\b", json.dumps(body))
    )
    counts = {
        "slack root": {s: roots[s] for s in run.services},
        "webhook": {ids.get(i, i): n for i, n in stand_in.effects_per_incident("/hook").items()},
        "deployer": {ids.get(i, i): n for i, n in stand_in.effects_per_incident("/deploy").items()},
    }
    repeated = {effect: {s: n for s, n in per.items() if n > 1} for effect, per in counts.items()}
    repeated = {effect: per for effect, per in repeated.items() if per}
    print(
        f"\nCHAOS kill-9 side effects: {sum(roots.values())} Slack roots, "
        f"{len(stand_in.received('/hook'))} webhook and {len(stand_in.received('/deploy'))} "
        f"deployer requests for {len(run.services)} incidents (a request repeating an "
        f"Idempotency-Key does not act again); repeated: {repeated or 'none'}"
    )
    if repeated and not AT_MOST_ONCE_BUILT:
        pytest.xfail(f"at-most-once side effects are not built yet (branch guardrails): {repeated}")
    assert repeated == {}, f"side effects repeated after kill -9: {repeated}"

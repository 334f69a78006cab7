"""A worker takes a partition back after a rebalance, on the embedded broker's odd log ends.

Tansu reports a partition's end as the base offset of its last record batch + 1.
A worker whose own detector checkpoints went out in one batch then holds a
"persisted" offset past that end when the partition comes back to it, which
Faust's RocksDB consistency check took for a deleted topic: the worker crashed
(found by the kill -9 rounds, docs/chaos.md).
"""

from __future__ import annotations

from pathlib import Path

from agents.kafka.broker import EmbeddedBroker, free_port
from tests.integration.support import (
    WorkerProcess,
    consume,
    metric_event,
    produce,
    wait_for,
    worker_env,
)

SERIES = 12  # checkpointed together: several records in one batch per partition
START = 1795255200.0


def samples(service: str, count: int, start: float) -> list[bytes]:
    return [metric_event(start + i * 0.1, 50.0 + i % 3, service) for i in range(count)]


def test_worker__takes_back_partitions_whose_checkpoints_share_a_batch(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker.url, None, FIRELINE_DETECTION__CHECKPOINT_S="0.5")
    first = WorkerProcess(env, tmp_path / "first.log").start()
    metrics = first.topic("metrics")
    services = [f"batch-{i}" for i in range(SERIES)]
    sent = 0
    for service in services:
        sent += produce(
            broker.bootstrap_servers, metrics, samples(service, 40, START), service.encode()
        )
    changelog = f"{env['FIRELINE_APP_ID']}-detector-state-changelog"
    wait_for(
        lambda: (
            len({m.key() for m in consume(broker.bootstrap_servers, changelog, SERIES, 2)})
            >= SERIES
        ),
        30,
        f"the checkpoints of all {SERIES} series",
    )
    # A second worker takes half of the partitions, and gives them back when it stops.
    second = WorkerProcess({**env, "FIRELINE_HTTP_PORT": str(free_port())}, tmp_path / "b.log")
    second.start()
    assert second.stop() == 0
    for service in services:
        sent += produce(
            broker.bootstrap_servers, metrics, samples(service, 5, START + 10), service.encode()
        )
    wait_for(
        lambda: first.metric("fireline_events_consumed_total", topic=metrics) >= sent,
        60,
        f"the first worker to read all {sent} samples, both partitions back",
    )
    assert "ConsistencyError" not in first.log()
    assert first.stop() == 0

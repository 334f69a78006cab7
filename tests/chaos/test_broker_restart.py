"""The broker restarts under a worker: with durable storage nothing is lost; without, it is said.

``fireline broker --storage s3://BUCKET/`` keeps the log in a bucket (here moto's
S3 server on loopback); the memory-only default loses it, and the worker must
say so (an ERROR line naming the partition, ``fireline_offsets_reset_total``)
rather than go on as if nothing happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from tests.chaos.kafka_probe import committed
from tests.chaos.s3 import environment, s3_server
from tests.integration.support import (
    WorkerProcess,
    consume,
    metric_event,
    produce,
    unique,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

PARTITIONS = 2


@pytest.fixture
def s3_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker keeping its log in a loopback S3 bucket (not yet started)."""
    bucket = unique("fireline").lower()
    with s3_server(bucket, tmp_path / "moto.log") as env, environment(env):
        broker = EmbeddedBroker(
            free_port(), log_file=tmp_path / "tansu.log", storage=f"s3://{bucket}/"
        )
        yield broker
        broker.stop()


def restart(broker: EmbeddedBroker) -> None:
    """kill -9 the broker and start it again on the same port and storage."""
    broker.kill()
    broker.start()


def samples(service: str, count: int, start: float) -> list[bytes]:
    return [metric_event(start + i, 50.0 + i % 7, service) for i in range(count)]


def test_s3_storage__1000_records_survive_a_kill_9_of_the_broker(s3_broker):
    broker = s3_broker.start()
    topic = unique("durable")
    asyncio.run(create_topics(broker.bootstrap_servers, [topic], PARTITIONS))
    sent = [f"record-{i}".encode() for i in range(1000)]
    produce(broker.bootstrap_servers, topic, sent)

    restart(broker)

    read = consume(broker.bootstrap_servers, topic, len(sent), timeout_s=60)
    assert sorted(m.value() for m in read) == sorted(sent)
    print(f"\nCHAOS broker-restart: {len(read)}/{len(sent)} records read back after kill -9")


def test_s3_storage__a_worker_resumes_after_a_broker_kill_9_without_loss_or_repeats(
    s3_broker, tmp_path
):
    broker = s3_broker.start()
    worker = WorkerProcess(
        worker_env(broker.url, None, FIRELINE_PARTITIONS=str(PARTITIONS)), tmp_path / "worker.log"
    ).start()
    group, metrics = worker.env["FIRELINE_APP_ID"], worker.topic("metrics")
    try:
        produce(broker.bootstrap_servers, metrics, samples("before", 200, 1795255200.0))
        wait_for(
            lambda: committed(broker.bootstrap_servers, group, metrics, PARTITIONS) == 200,
            60,
            "the worker to commit the first 200 samples",
        )

        restart(broker)
        produce(broker.bootstrap_servers, metrics, samples("after", 100, 1795256200.0))

        wait_for(
            lambda: committed(broker.bootstrap_servers, group, metrics, PARTITIONS) == 300,
            90,
            f"the worker to commit all 300 samples; log:\n{worker.log()[-3000:]}",
        )
        consumed = worker.metric("fireline_events_consumed_total", topic=metrics)
        assert consumed == 300, "every sample read exactly once across the broker's restart"
        assert worker.metric("fireline_offsets_reset_total") == 0
    finally:
        worker.stop()


def test_memory_broker__a_restart_that_lost_the_log_is_reported_and_consuming_goes_on(
    tmp_path,
):
    broker = EmbeddedBroker(free_port(), log_file=tmp_path / "tansu.log").start()
    env = worker_env(broker.url, None, FIRELINE_PARTITIONS=str(PARTITIONS))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    group, metrics = env["FIRELINE_APP_ID"], worker.topic("metrics")
    topics = [v for k, v in env.items() if k.startswith("FIRELINE_TOPICS__")]
    try:
        # One series, one partition: its offset is the one the broker will lose.
        produce(broker.bootstrap_servers, metrics, samples("svc", 30, 1795255200.0), key=b"svc")
        wait_for(
            lambda: committed(broker.bootstrap_servers, group, metrics, PARTITIONS) == 30,
            60,
            "the worker to commit 30 samples",
        )

        restart(broker)  # memory only: the log and the group's offsets are gone
        asyncio.run(create_topics(broker.bootstrap_servers, topics, PARTITIONS))

        wait_for(
            lambda: worker.metric("fireline_offsets_reset_total", topic=metrics) == 1,
            60,
            f"fireline_offsets_reset_total for {metrics}; log:\n{worker.log()[-3000:]}",
        )
        lines = [line for line in worker.log().splitlines() if "offsets lost" in line]
        assert len(lines) == 1, lines
        assert " ERROR " in lines[0]
        assert f"offsets lost on topic {metrics} partition " in lines[0]
        assert "position 30 is gone" in lines[0]

        # Not stalled: the new log is read from its start and committed.
        produce(broker.bootstrap_servers, metrics, samples("svc", 10, 1795255300.0), key=b"svc")
        wait_for(
            lambda: committed(broker.bootstrap_servers, group, metrics, PARTITIONS) == 10,
            60,
            "the worker to commit the 10 samples sent after the restart",
        )
        assert worker.metric("fireline_events_consumed_total", topic=metrics) == 40
    finally:
        worker.stop()
        broker.stop()

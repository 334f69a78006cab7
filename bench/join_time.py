"""Consumer-group join time on the embedded broker, by session timeout.

Tansu answers a JoinGroup after about half the session timeout, which is why a
stock Faust worker (broker_session_timeout=60) takes ~30 s to become ready and
why fireline's demo and tests use 3 s. Prints one row per timeout.

    .venv/bin/python bench/join_time.py [--timeouts 60 10 6 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiokafka import AIOKafkaConsumer

from agents.kafka.broker import EmbeddedBroker, create_topics, free_port


async def join_seconds(bootstrap: str, session_timeout_s: float) -> float:
    consumer = AIOKafkaConsumer(
        "bench.join",
        bootstrap_servers=bootstrap,
        group_id=f"join-{session_timeout_s}-{time.monotonic_ns()}",
        session_timeout_ms=int(session_timeout_s * 1000),
        heartbeat_interval_ms=int(session_timeout_s * 1000 / 6),
        request_timeout_ms=int(max(40, session_timeout_s + 10) * 1000),
    )
    started = time.perf_counter()
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.01)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeouts", type=float, nargs="+", default=[60.0, 10.0, 6.0, 3.0])
    args = parser.parse_args()
    with EmbeddedBroker(free_port()) as broker:
        asyncio.run(create_topics(broker.bootstrap_servers, ["bench.join"], 1))
        print("session timeout   join")
        for timeout in args.timeouts:
            seconds = asyncio.run(join_seconds(broker.bootstrap_servers, timeout))
            print(f"{timeout:>13.0f} s  {seconds:5.1f} s")


if __name__ == "__main__":
    main()

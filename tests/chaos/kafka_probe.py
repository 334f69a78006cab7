"""Read what the broker holds for a consumer group, with an independent client (librdkafka)."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of ``group``'s committed offsets over ``topic``'s partitions (none: 0)."""
    return sum(committed_per_partition(bootstrap, group, topic, partitions))


def committed_per_partition(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """``group``'s committed offset in each of ``topic``'s partitions (none: 0)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
    finally:
        consumer.close()
    return [max(0, tp.offset) for tp in offsets]

"""FaustPublisher's retry logic, against a stand-in producer (pure logic: no broker)."""

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from aiokafka.structs import RecordMetadata, TopicPartition

from agents.service.app import FaustPublisher
from agents.service.incident_inputs import Written
from fireline.errors import BrokerError


class FlakyProducer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, bytes | None, bytes, object]] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker went away")
        self.sent.append((topic, key, value, headers))
        future = asyncio.get_running_loop().create_future()
        # Where the broker put it, as aiokafka's producer reports it.
        offset = len(self.sent) - 1
        future.set_result(RecordMetadata(topic, 0, TopicPartition(topic, 0), offset, -1, 0, 0))
        return future


class App:
    def __init__(self, producer: FlakyProducer) -> None:
        self.producer = producer


async def test_publisher__retries_then_delivers_everything():
    producer = FlakyProducer(failures=2)
    publisher = FaustPublisher(App(producer), retries=3, first_backoff_s=0.001)
    written = await publisher.publish("t", [(b"k", b"v", {"h": b"1"}), (None, b"w", {})])
    assert producer.sent == [("t", b"k", b"v", [("h", b"1")]), ("t", None, b"w", None)]
    assert written == [Written(0, 0), Written(0, 1)]  # where each record went, in order


async def test_publisher__gives_up_with_a_broker_error():
    publisher = FaustPublisher(App(FlakyProducer(failures=10)), retries=2, first_backoff_s=0.001)
    with pytest.raises(
        BrokerError,
        match=r"cannot publish 1 records to t after 3 attempt\(s\): KafkaConnectionError",
    ):
        await publisher.publish("t", [(b"k", b"v", {})])


class TooLargeProducer(FlakyProducer):
    async def send(self, topic, key, value, partition, timestamp, headers):
        self.failures += 1
        raise MessageSizeTooLargeError()


async def test_publisher__does_not_retry_what_cannot_succeed():
    producer = TooLargeProducer(failures=0)
    publisher = FaustPublisher(App(producer), retries=5, first_backoff_s=0.001)
    with pytest.raises(BrokerError, match=r"after 1 attempt\(s\): MessageSizeTooLargeError"):
        await publisher.publish("t", [(b"k", b"v" * 10, {})])
    assert producer.failures == 1

"""`RecordSender` keeps the topic's partitions from the metadata updates aiokafka announces, and
leaves a record to `send()` whenever it cannot tell its partition. Against a stand-in for the
producer's metadata and accumulator; tests/integration/test_record_sender.py sends for real."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from gateway.record_sender import RecordSender

TOPIC = "hookline.events"


class Cluster:
    def __init__(self, partitions: set[int] | None) -> None:
        self.partitions = partitions
        self.listeners: set[Callable[[Any], None]] = set()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == TOPIC else None

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.add(listener)

    def remove_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.remove(listener)

    def update(self, partitions: set[int] | None) -> None:
        self.partitions = partitions
        for listener in self.listeners:
            listener(self)


class Client:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.topics: set[str] = set()

    def add_topic(self, topic: str) -> None:
        self.topics.add(topic)


class Accumulator:
    async def add_message(self, tp: TopicPartition, key: bytes, value: bytes, timeout: float, **kw: Any) -> Any:
        return tp, key, value, timeout, kw


class Producer:
    def __init__(self, partitions: set[int] | None) -> None:
        self.client = Client(Cluster(partitions))
        self._message_accumulator = Accumulator()


def aiokafka_picks(key: bytes, partitions: int) -> int:
    everything = list(range(partitions))
    return int(DefaultPartitioner()(key, everything, everything))


async def partition(sender: RecordSender, key: bytes) -> int | None:
    adding = sender.send(key, b"value", [("ce_id", b"1")])
    if adding is None:
        return None
    tp, sent_key, value, timeout, kw = await adding
    assert (tp.topic, sent_key, value, timeout, kw) == (TOPIC, key, b"value", 7.5, {"headers": [("ce_id", b"1")]})
    return int(tp.partition)


KEYS = [f"fingerprint-{n}".encode() for n in range(200)]


async def test_each_key_goes_where_aiokafkas_own_partitioner_puts_it() -> None:
    sender = RecordSender(Producer({0, 1, 2}), TOPIC, timeout_s=7.5)  # type: ignore[arg-type]
    assert [await partition(sender, key) for key in KEYS] == [aiokafka_picks(key, 3) for key in KEYS]


async def test_the_sender_asks_aiokafka_to_follow_its_topic() -> None:
    producer = Producer({0})
    RecordSender(producer, TOPIC, timeout_s=7.5)  # type: ignore[arg-type]
    assert producer.client.topics == {TOPIC}


async def test_partitions_follow_the_metadata_updates() -> None:
    producer = Producer(None)
    sender = RecordSender(producer, TOPIC, timeout_s=7.5)  # type: ignore[arg-type]
    assert await partition(sender, b"k") is None, "partitions not known yet: left to send()"
    producer.client.cluster.update({0, 1, 2, 3, 4, 5})
    assert [await partition(sender, key) for key in KEYS] == [aiokafka_picks(key, 6) for key in KEYS]
    producer.client.cluster.update(None)  # a refresh that no longer has the topic
    assert await partition(sender, b"k") is None
    producer.client.cluster.update({0, 2})  # not numbered 0..n-1: not ours to guess
    assert await partition(sender, b"k") is None


async def test_a_closed_sender_stops_listening() -> None:
    producer = Producer({0})
    sender = RecordSender(producer, TOPIC, timeout_s=7.5)  # type: ignore[arg-type]
    sender.close()
    assert producer.client.cluster.listeners == set()

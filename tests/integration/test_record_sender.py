"""`RecordSender` puts each record where, and as, `producer.send()` would (gateway/record_sender.py).

It calls aiokafka's internals (`_message_accumulator.add_message`) with `send()`'s arguments, so
these tests hold it to `send()`'s behaviour on a real broker: the partition aiokafka's own
partitioner picks, the record's value and headers, each record exactly once, a full batch
waited out, and the partitions followed when the topic grows.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.partitioner import DefaultPartitioner

from gateway.record_sender import RecordSender
from hookline.kafka import create_producer, read_topic, start_client
from hookline.settings import KafkaSettings

pytestmark = pytest.mark.integration


def partition_send_picks(key: bytes, partitions: int) -> int:
    """aiokafka's default partitioner (its own, pure-Python murmur2) for a keyed record."""
    everything = list(range(partitions))
    return int(DefaultPartitioner()(key, everything, everything))


async def sent(sender: RecordSender, key: bytes) -> int:
    """Send `key` (its value and header derived from it); the partition Kafka acknowledged."""
    adding = sender.send(key, b"value of " + key, [("ce_id", key), ("empty", b"")])
    assert adding is not None
    metadata = await (await adding)
    return int(metadata.partition)  # type: ignore[attr-defined]


async def started_producer(settings: KafkaSettings, **overrides: object) -> AIOKafkaProducer:
    producer = create_producer(settings, **overrides)
    await start_client(producer)
    return producer


async def test_records_land_once_each_on_the_partition_send_would_pick(kafka_settings: KafkaSettings) -> None:
    topic = kafka_settings.events_topic  # 3 partitions
    # Small batches, so that most records find their partition's batch full and wait for room.
    producer = await started_producer(kafka_settings, max_batch_size=4096)
    sender = RecordSender(producer, topic, timeout_s=30)
    try:
        await (await producer.send(topic, b"first", key=b"first"))  # the topic's metadata is in
        keys = [f"alert-{n:05d}".encode() for n in range(3000)]
        acknowledged = await asyncio.gather(*(sent(sender, key) for key in keys))
    finally:
        await producer.stop()
        sender.close()

    assert acknowledged == [partition_send_picks(key, 3) for key in keys]
    records = [record async for record in read_topic(kafka_settings, topic) if record.key != b"first"]
    assert Counter(record.key for record in records) == Counter(keys), "each record exactly once"
    for record in records:
        assert record.partition == partition_send_picks(record.key, 3)
        assert record.value == b"value of " + record.key
        assert list(record.headers) == [("ce_id", record.key), ("empty", b"")]


async def test_the_sender_follows_the_topic_when_it_gains_partitions(kafka_settings: KafkaSettings) -> None:
    topic = kafka_settings.events_topic
    producer = await started_producer(kafka_settings)
    sender = RecordSender(producer, topic, timeout_s=30)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await start_client(admin)
    try:
        await (await producer.send(topic, b"first", key=b"first"))
        keys = [f"key-{n}".encode() for n in range(60)]
        assert {await sent(sender, key) for key in keys} == {0, 1, 2}
        await admin.create_partitions({topic: NewPartitions(total_count=6)})
        await producer.client.force_metadata_update()
        assert [await sent(sender, key) for key in keys] == [partition_send_picks(key, 6) for key in keys]
        assert max(partition_send_picks(key, 6) for key in keys) >= 3, "some keys moved to the new partitions"
    finally:
        await admin.close()
        await producer.stop()
        sender.close()

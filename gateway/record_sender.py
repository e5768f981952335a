"""A record into aiokafka's batch for its partition, without `send()`'s per-record preamble.

`AIOKafkaProducer.send()` spent some 500 bytecodes on each gateway record, a tenth of a request:
it awaits the topic's metadata, estimates the record's size, builds two sets of the topic's
partitions to pick one, and only then appends the record to the partition's open batch
(`MessageAccumulator.add_message`). `RecordSender` knows the partitions from the metadata
updates, hashes the key as every Kafka producer does, and calls `add_message` with the same
arguments `send()` would: some 34,000 fewer instructions a gateway request (callgrind, lab).

What happens from `add_message` on is aiokafka's, as with `send()`: batching and linger, waiting
for room when a batch is full, retries, the idempotent producer's sequence numbers, the future
aiokafka resolves when Kafka acknowledges the batch. aiokafka's public batch API
(`create_batch`/`send_batch`) was measured too and not kept: a batch's acknowledgement reaches
its requests through `asyncio.shield` and a callback, two loop turns later than `send()`'s
futures, and with 64 connections that latency cost a quarter of the requests a second.

`add_message` and `_message_accumulator` are aiokafka's internals (pinned below 0.15 in
pyproject.toml); tests/integration/test_record_sender.py holds them to `send()`'s behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.cluster import ClusterMetadata

from hookline.kafka import partition_of

__all__ = ["RecordSender"]


class RecordSender:
    """Records to `topic` through `producer`, which must be neither transactional nor configured
    with serializers (keys and values are bytes), and keyed: the partition is the one every Kafka
    producer chooses (`hookline.kafka.partition_of`). The caller sends a record that may exceed
    `max_request_size` through `send()`, which refuses it before it joins a batch."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, timeout_s: float) -> None:
        self._accumulator = producer._message_accumulator
        self._topic = topic
        self._timeout_s = timeout_s  # send() passes its request_timeout_ms: the wait for room
        self._partitions: list[TopicPartition] = []
        self._cluster: ClusterMetadata = producer.client.cluster
        self._cluster.add_listener(self._metadata_updated)
        self._metadata_updated(self._cluster)
        # As send() does on its first record: the client follows this topic's metadata from now
        # on (or every refresh is of the whole cluster, and the partitions are learnt late).
        producer.client.add_topic(topic)

    def _metadata_updated(self, cluster: ClusterMetadata) -> None:
        numbers = cluster.partitions_for_topic(self._topic) or set()
        # Kafka numbers a topic's partitions 0..n-1; anything else is left to send().
        count = len(numbers) if numbers == set(range(len(numbers))) else 0
        self._partitions = [TopicPartition(self._topic, n) for n in range(count)]

    def send(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Coroutine[Any, Any, asyncio.Future[object]] | None:
        """What to await for the future of the record's acknowledgement (as `send()` returns it;
        aiokafka's own coroutine, not one more of ours); None while the topic's partitions are not
        known (`send()` waits for them)."""
        partitions = self._partitions
        if not partitions:
            return None
        tp = partitions[partition_of(key, len(partitions))]
        return self._accumulator.add_message(tp, key, value, self._timeout_s, headers=headers)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._cluster.remove_listener(self._metadata_updated)

"""Kafka connection helpers: the one place producers, consumers and topics are configured."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hookline.settings import KafkaSettings

__all__ = ["create_consumer", "create_producer", "ensure_topics", "topic_partitions", "wait_for_kafka"]


def create_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A durable producer: acks=all and idempotence, so a 2xx means the event is on disk."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.linger_ms,
        "request_timeout_ms": settings.request_timeout_ms,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(settings: KafkaSettings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that never commits on its own: offsets are committed after the work is done."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create Hookline's topics if they are missing (events, DLQ, compacted definitions and schedules)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    await admin.start()
    try:
        wanted = [
            NewTopic(settings.events_topic, settings.events_partitions, 1),
            NewTopic(settings.dlq_topic, 1, 1),
            NewTopic(
                settings.workflows_topic,
                1,
                1,
                topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
            ),
            # The last slot each schedule ticked, so a restarted ticker knows what it missed.
            NewTopic(settings.schedules_topic, 1, 1, topic_configs={"cleanup.policy": "compact"}),
        ]
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
    finally:
        await admin.close()


async def wait_for_kafka(bootstrap_servers: str, timeout: float = 60.0) -> None:
    """Wait until the broker answers a metadata request; raises TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    while time.monotonic() < deadline:
        try:  # a plain TCP probe first keeps the client from logging every refused attempt
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
        except OSError as exc:
            last = exc
            await asyncio.sleep(0.2)
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as exc:
            last = exc
        finally:
            await admin.close()
        await asyncio.sleep(0.25)
    raise TimeoutError(f"Kafka at {bootstrap_servers} did not answer within {timeout:.0f}s: {last}")


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of `topic` (refreshing metadata first); empty if the topic does not exist."""
    # An unassigned consumer keeps no metadata for the topic; aiokafka exposes the fresh cluster
    # view only through its client.
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]

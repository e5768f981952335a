"""A request's events become visible to the triggers all together or not at all: when Kafka
refuses one event of an Alertmanager group, the others it already took are aborted with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError

from hookline.settings import KafkaSettings
from tests.conftest import events_of, read_topic
from tests.eventually import eventually

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


async def limit_topic_records(settings: KafkaSettings, max_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, settings.events_topic, {"max.message.bytes": str(max_bytes)}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()
    # The broker applies a topic's new config a moment after it acknowledges it, and a loaded one
    # later still: wait until every partition refuses a record over the limit, inside a
    # transaction that is aborted, so that nothing the test reads comes from this probe.
    probe = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, transactional_id=f"{settings.client_id}-limit-probe"
    )
    await probe.start()
    try:
        for partition in range(settings.events_partitions):
            await eventually(
                partial(refuses, probe, settings.events_topic, partition, b"x" * (max_bytes + 1_000)),
                f"partition {partition} of {settings.events_topic} to refuse records over {max_bytes} bytes",
            )
    finally:
        await probe.stop()


async def refuses(producer: AIOKafkaProducer, topic: str, partition: int, value: bytes) -> bool:
    await producer.begin_transaction()
    try:
        await producer.send_and_wait(topic, value, partition=partition)
    except MessageSizeTooLargeError:
        return True
    finally:
        await producer.abort_transaction()
    return False


async def test_a_group_whose_second_alert_kafka_refuses_leaves_none_of_its_events_visible(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    await limit_topic_records(kafka_settings, 8_000)
    doc = notification(alerts=10)  # spread over the topic's partitions
    doc["alerts"][1]["annotations"]["description"] = "x" * 20_000  # over the topic's limit, under the body limit

    response = await gateway.post(
        "/hooks/alertmanager", data=json.dumps(doc), headers={"Content-Type": "application/json"}
    )

    assert response.status == 413, await response.text()
    assert await read_topic(kafka_settings, kafka_settings.events_topic, timeout=3) == []


async def test_a_group_kafka_takes_is_visible_whole(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    doc = notification(alerts=3)
    response = await gateway.post(
        "/hooks/alertmanager", data=json.dumps(doc), headers={"Content-Type": "application/json"}
    )
    assert response.status == 202, await response.text()
    records = await read_topic(kafka_settings, kafka_settings.events_topic, expect=3)
    assert sorted(e.id for e in events_of(records)) == sorted((await response.json())["event_ids"])

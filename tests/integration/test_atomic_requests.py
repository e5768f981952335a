"""A request's events become visible to the triggers all together or not at all: when Kafka
refuses one event of an Alertmanager group, the others it already took are aborted with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookline.settings import KafkaSettings
from tests.conftest import events_of, read_topic

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

"""The broker goes away under the triggers and comes back: their writes to Kafka (decisions, the
DLQ) wait for it instead of ending the service, and every alert still gets exactly one run and
its decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka.structs import ConsumerRecord
from temporalio.client import Client

from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import KafkaServer, free_port
from schemas.agents import AgentCatalog
from schemas.decisions import SNAPSHOT_PREFIX
from tests.conftest import ROOT, read_topic, running
from tests.eventually import eventually
from tests.integration.conftest import incident_workflow_ids, runs_of
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings

pytestmark = [pytest.mark.integration, pytest.mark.long]


@pytest.fixture
async def own_kafka(tmp_path: Path) -> AsyncIterator[KafkaServer]:
    """A broker of this test's own, so that it can be killed without touching other tests."""
    server = KafkaServer(
        tmp_path / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port(), heap="256m"
    )
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def kafka_settings(own_kafka: KafkaServer, unique: str) -> KafkaSettings:
    """This module's gateway, definitions and triggers use the test's own broker. A request
    waits at most 0.5 s for it, so that without the triggers' retry one failed write ends them."""
    settings = KafkaSettings(
        bootstrap_servers=own_kafka.bootstrap_servers,
        topic_prefix=unique,
        events_partitions=3,
        client_id=unique,
        request_timeout_ms=500,
    )
    await ensure_topics(settings)
    return settings


async def decided(settings: KafkaSettings) -> set[str]:
    """The events with a decision on the decisions topic."""
    records = await read_topic(settings, settings.decisions_topic, timeout=1)
    return {r.key.decode() for r in records if not r.key.startswith(SNAPSHOT_PREFIX.encode())}


@pytest.mark.usefixtures("definitions")
async def test_the_triggers_wait_out_a_broker_restart_and_decide_every_alert_once(
    gateway: TestClient[Any, Any],
    own_kafka: KafkaServer,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
    unique: str,
    notification: Callable[..., dict[str, Any]],
) -> None:
    bodies = [notification(alerts=1) for _ in range(120)]
    event_ids: list[str] = []
    for body in bodies:
        response = await gateway.post("/hooks/alertmanager", json=body)
        assert response.status == 202, await response.text()
        event_ids += (await response.json())["event_ids"]
    workflow_ids = [wid for body in bodies for wid in incident_workflow_ids(body)]
    # One record at a time: the consumer has fetched more than it has decided when the broker
    # dies; the decision in hand waits for it (the producer retries a partition it knows).
    options = TriggersOptions(group_id=unique, port=0, ticker=False, concurrency=1)
    service = TriggersService(
        TriggersSettings(kafka=kafka_settings, temporal=temporal_settings, triggers=options),
        temporal_client,
        agents=agents,
    )

    def retries() -> float:
        return service.metrics.registry.get_sample_value("hookline_triggers_kafka_retries_total") or 0.0

    async with running(service.run, service.stop) as task:
        await eventually(lambda: decided(kafka_settings), "some decisions", until=lambda d: len(d) >= 5, timeout=60)
        own_kafka.kill()
        # A record to dead-letter while the broker is gone. The producer has not written to the
        # DLQ before, so it has to ask the cluster about the topic, and gives up after its
        # request timeout: the triggers try again (before, the service ended there).
        bad = ConsumerRecord(kafka_settings.events_topic, 0, 0, 0, 0, b"k", b"not json", None, 0, 0, [])
        dead_lettering = asyncio.create_task(service._dead_letter(bad, "undecodable event: not JSON"))
        await eventually(retries, "the DLQ write to be retried", timeout=30)
        await asyncio.sleep(3)  # six times the producer's own wait for the broker
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
        assert not dead_lettering.done()
        await own_kafka.start()
        await asyncio.wait_for(dead_lettering, 60)
        await eventually(
            lambda: decided(kafka_settings),
            "a decision for every alert",
            until=lambda d: d >= set(event_ids),
            timeout=90,
            interval=1,
        )
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"

    for workflow_id in workflow_ids:
        assert len(await runs_of(temporal_client, workflow_id)) == 1, workflow_id
    assert [r.value for r in await read_topic(kafka_settings, kafka_settings.dlq_topic, timeout=1)] == [b"not json"]

"""A fault is confined to the record, and the definition, it concerns: whatever a producer puts
on Kafka and whatever one definition raises, the triggers dead-letter that pair with the reason,
start what else the record matches, move the partition on and keep running."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import orjson
import pytest
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.kafka import create_producer
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.events import Event
from tests.conftest import read_topic, running
from tests.integration.conftest import create_topic, runs_of, started_runs
from tests.integration.test_dlq_and_explain import cli_run
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings

LENIENT = {"name": "Lenient", "trigger": {"type": "webhook", "source": "alertmanager"}}


@pytest.fixture
async def kafka_settings(kafka_settings: KafkaSettings) -> KafkaSettings:
    """This test's topics, the default team allowed to subscribe to the orders topics."""
    return kafka_settings.model_copy(update={"trigger_topics": {"default": ["orders.*"]}})


def event(dedupekey: str) -> Event:
    return Event(
        id=dedupekey,
        source="/hooks/alertmanager",
        type="io.prometheus.alertmanager.alert.firing",
        dedupekey=dedupekey,
        partitionkey="fingerprint-1",
        hooklinesource="alertmanager",
        data={"alert": {"labels": {"alertname": "X"}}},
    )


async def test_records_no_producer_of_ours_would_make_are_dead_lettered_and_the_partition_moves_on(
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put(LENIENT)
    key, value, headers = event("good").to_kafka()
    hostile: list[tuple[bytes, list[tuple[str, bytes | None]]]] = [
        (value, [*event("null-header").to_kafka()[2], ("ce_subject", None)]),
        (b'{"a":' * 300 + b"1" + b"}" * 300, list(event("deep").to_kafka()[2])),
        (b'{"a":' * 65 + b"1" + b"}" * 65, list(event("just-too-deep").to_kafka()[2])),
    ]
    producer = create_producer(kafka_settings)
    await producer.start()
    try:
        for hostile_value, hostile_headers in hostile:  # the same key: one partition, in this order
            await producer.send_and_wait(kafka_settings.events_topic, hostile_value, key=key, headers=hostile_headers)
        await producer.send_and_wait(kafka_settings.events_topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
    service = triggers_service()
    async with running(service.run, service.stop) as task:
        await started_runs(temporal_client, event_run_id("lenient", "alertmanager", "good"))
        dead = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=3)
        assert not task.done()
    reasons = sorted(dict(r.headers)["hookline_dlq_reason"].decode() for r in dead)
    assert reasons[0] == "undecodable event: header ce_subject has no value (null)"
    assert reasons[1:] == ["undecodable event: value is nested more than 64 levels deep"] * 2
    assert all("hookline_dlq_definition" not in dict(r.headers) for r in dead)  # the record's own fault
    for bad in ("null-header", "deep", "just-too-deep"):
        assert await runs_of(temporal_client, event_run_id("lenient", "alertmanager", bad)) == []


class FaultyCatalog(AgentCatalog):
    """Hookline's own code failing for one definition only, with an exception no one planned for."""

    def get(self, name: str) -> Agent | None:
        if name == "faulty":
            raise TypeError("a bug in per-record code")
        return super().get(name)


async def test_an_unexpected_error_of_one_definition_dead_letters_that_definition_alone(
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents: AgentCatalog,
) -> None:
    await store.put(LENIENT)
    await store.put({**LENIENT, "name": "Faulty", "steps": [{"name": "s", "agent": "faulty"}]})
    await store.put({**LENIENT, "name": "Zed"})  # after the faulty one in id order
    options = TriggersOptions(group_id=kafka_settings.topic_prefix, port=0, ticker=False)
    settings = TriggersSettings(kafka=kafka_settings, temporal=temporal_settings, triggers=options)
    service = TriggersService(settings, temporal_client, agents=FaultyCatalog.model_validate(agents.model_dump()))
    key, value, headers = event("once").to_kafka()
    async with running(service.run, service.stop) as task:
        producer = create_producer(kafka_settings)
        await producer.start()
        await producer.send_and_wait(kafka_settings.events_topic, value, key=key, headers=headers)
        await producer.stop()
        for definition in ("lenient", "zed"):
            await started_runs(temporal_client, event_run_id(definition, "alertmanager", "once"))
        [dead] = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=1)
        assert not task.done()
    named = dict(dead.headers)
    assert named["hookline_dlq_definition"] == b"faulty"
    assert named["hookline_dlq_reason"] == b"definition faulty v1: unexpected TypeError: a bug in per-record code"


@pytest.fixture
async def orders_topic(kafka_settings: KafkaSettings) -> str:
    name = f"orders.{kafka_settings.topic_prefix}"
    await create_topic(kafka_settings, name)
    return name


async def test_a_replayed_plain_kafka_record_starts_no_second_run(
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
    orders_topic: str,
) -> None:
    strict = {
        "name": "Strict Order",
        "trigger": {"type": "kafka", "topic": orders_topic},
        "inputs": {"type": "object", "required": ["customer"]},
    }
    await store.put({"name": "Ship Order", "trigger": {"type": "kafka", "topic": orders_topic}})
    await store.put(strict)
    service = triggers_service()
    async with running(service.run, service.stop):
        producer = create_producer(kafka_settings)
        await producer.start()
        sent = await producer.send_and_wait(orders_topic, orjson.dumps({"order": uuid.uuid4().hex}))
        await producer.stop()
        key = f"kafka-{orders_topic}-{sent.partition}-{sent.offset}"
        ship, strict_id = (event_run_id(d, f"kafka:{orders_topic}", key) for d in ("ship-order", "strict-order"))
        await started_runs(temporal_client, ship)
        [dead] = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=1)
        assert dict(dead.headers)["hookline_dlq_definition"] == b"strict-order"
        await store.put({**strict, "inputs": {"type": "object"}})  # the fix
        for _ in range(2):
            replayed = await cli_run(["replay"], kafka_settings)
            assert replayed.exit_code == 0, replayed.output
        await started_runs(temporal_client, strict_id)
        await asyncio.sleep(2)
    for definition in ("ship-order", "strict-order"):
        runs = [w.id async for w in temporal_client.list_workflows(f"HooklineDefinitionId = '{definition}'")]
        assert len(runs) == 1, runs

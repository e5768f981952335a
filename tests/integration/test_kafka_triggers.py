"""`kafka` triggers: records producers put on their own topics (plain JSON or CloudEvents) start
workflows; a topic named by a new definition is picked up without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.dlq import replay_dlq
from hookline.kafka import create_producer
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from tests.conftest import read_topic, running
from tests.eventually import eventually
from tests.integration.conftest import create_topic, started_runs
from triggers.app import TriggersService


@pytest.fixture
async def kafka_settings(kafka_settings: KafkaSettings) -> KafkaSettings:
    """This test's topics, the default team allowed to subscribe to the orders topics."""
    return kafka_settings.model_copy(update={"trigger_topics": {"default": ["orders.*"]}})


@pytest.fixture
async def orders_topic(kafka_settings: KafkaSettings) -> str:
    # Not under the prefix: Hookline's own topics cannot be subscribed to.
    name = f"orders.{kafka_settings.topic_prefix}"
    await create_topic(kafka_settings, name, partitions=2)
    return name


async def wait_for_runs_of(client: Client, definition_id: str) -> None:
    async def runs() -> list[Any]:
        return [w async for w in client.list_workflows(f"HooklineDefinitionId = '{definition_id}'")]

    await eventually(runs, f"a run of {definition_id}", timeout=15)


async def test_records_on_a_topic_named_by_a_definition_start_its_runs(
    store: DefinitionStore,
    orders_topic: str,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    service = triggers_service()
    producer = create_producer(kafka_settings)
    await producer.start()
    async with running(service.run, service.stop):
        await asyncio.sleep(1)  # running, subscribed to the events topic only
        await store.put(
            {
                "name": "Fulfil Order",
                "trigger": {
                    "type": "kafka",
                    "topic": orders_topic,
                    "filter": ['data.kind="order"'],
                    "input": {"order": "${{ data.id }}"},
                },
                "steps": [{"name": "ship", "agent": "deployer"}],
            }
        )

        async def send(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Any:
            return await producer.send_and_wait(orders_topic, value, key=b"customer-7", headers=headers or [])

        plain = await send(orjson.dumps({"kind": "order", "id": 1}))
        await send(orjson.dumps({"kind": "refund", "id": 2}))  # filtered out
        binary_headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"order-3"),
            ("ce_source", b"/shop"),
            ("ce_type", b"com.example.order.created"),
            ("content-type", b"application/json"),
        ]
        await send(orjson.dumps({"kind": "order", "id": 3}), binary_headers)
        await send(orjson.dumps({"kind": "order", "id": 3}), binary_headers)  # the producer retried
        structured = {"specversion": "1.0", "id": "order-4", "source": "/shop", "type": "t", "data": {"kind": "order"}}
        await send(orjson.dumps(structured))
        await send(b"not json at all")

        source = f"kafka:{orders_topic}"
        plain_id = event_run_id("fulfil-order", source, f"kafka-{orders_topic}-{plain.partition}-{plain.offset}")
        order_3, order_4 = (event_run_id("fulfil-order", source, key) for key in ("order-3", "order-4"))
        for workflow_id in (plain_id, order_3, order_4):
            await started_runs(temporal_client, workflow_id)
        [dead] = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=1)
        await asyncio.sleep(1)
    await producer.stop()
    # This test's topic only: other tests' definitions named fulfil-order run in the namespace too.
    ours = event_run_id("fulfil-order", source, "")
    listed = temporal_client.list_workflows("HooklineDefinitionId = 'fulfil-order'")
    runs = [w.id async for w in listed if w.id.startswith(ours)]
    assert sorted(runs) == sorted([plain_id, order_3, order_4])
    headers = dict(dead.headers)
    assert headers["hookline_dlq_topic"] == orders_topic.encode()
    assert headers["hookline_dlq_reason"].startswith(b"undecodable event: record is neither a CloudEvent nor JSON")


async def test_a_stored_definition_naming_the_dlq_starts_nothing(
    store: DefinitionStore,
    orders_topic: str,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    # Written before topics were checked at save: it would loop the DLQ's records into runs.
    looping: dict[str, Any] = {
        "id": "dlq-reader",
        "name": "DLQ reader",
        "trigger": {"type": "kafka", "topic": kafka_settings.dlq_topic},
        "steps": [{"name": "ship", "agent": "deployer"}],
    }
    record = {"id": "dlq-reader", "version": 1, "digest": "d", "definition": looping, "created_at": ""}
    producer = create_producer(kafka_settings)
    await producer.start()
    await producer.send_and_wait(kafka_settings.workflows_topic, orjson.dumps(record), key=b"dlq-reader")
    service = triggers_service()
    async with running(service.run, service.stop):
        await store.put(
            {
                "name": "Fulfil Order",
                "trigger": {"type": "kafka", "topic": orders_topic},
                "steps": [{"name": "ship", "agent": "deployer"}],
            }
        )
        await producer.send_and_wait(kafka_settings.dlq_topic, orjson.dumps({"kind": "dead"}))
        await producer.send_and_wait(orders_topic, orjson.dumps({"kind": "order"}))
        await wait_for_runs_of(temporal_client, "fulfil-order")
        await asyncio.sleep(2)
    await producer.stop()
    assert [w.id async for w in temporal_client.list_workflows("HooklineDefinitionId = 'dlq-reader'")] == []


async def test_the_largest_records_a_topic_takes_are_decided_and_dead_lettered_and_the_service_goes_on(
    store: DefinitionStore,
    orders_topic: str,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    """A record as large as the broker takes (1 MiB) makes a decision larger than that, a run
    request larger than Temporal takes (2 MB: the event travels in it twice), and a DLQ record
    with the DLQ's headers larger still: none of it may end the service, which would meet the
    same record again after every restart and stop every team's events."""
    await store.put(
        {
            "name": "Fulfil Order",
            "trigger": {"type": "kafka", "topic": orders_topic, "filter": ['data.kind="order"']},
            "steps": [{"name": "ship", "agent": "deployer"}],
        }
    )
    # The broker takes a batch of up to 1 MiB + 12 bytes; the producer is let send that much.
    producer = create_producer(kafka_settings, max_request_size=2 * 1024 * 1024)
    await producer.start()
    room = 1024 * 1024 - 200  # the record batch's own bytes
    large = orjson.dumps({"kind": "order", "pad": "x" * (room - 40)})
    not_json = b"<" * room
    after = orjson.dumps({"kind": "order", "id": "after"})
    sent = [await producer.send_and_wait(orders_topic, value, key=b"k") for value in (large, not_json, after)]
    await producer.stop()
    service = triggers_service()
    source = f"kafka:{orders_topic}"
    after_id = event_run_id("fulfil-order", source, f"kafka-{orders_topic}-{sent[2].partition}-{sent[2].offset}")
    async with running(service.run, service.stop) as task:
        await started_runs(temporal_client, after_id, timeout=30)
        decisions = await read_topic(kafka_settings, kafka_settings.decisions_topic, expect=3, timeout=15)
        dead = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=2, timeout=15)
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"

    docs = {
        doc["offset"]: doc for r in decisions if not r.key.startswith(b"snapshot:") for doc in [orjson.loads(r.value)]
    }
    assert sorted(docs) == [sent[0].offset, sent[2].offset]  # the record that is not JSON has no event
    large_decision = docs[sent[0].offset]
    assert large_decision["data"] == {} and large_decision["data_omitted"] >= room - 40
    [row] = large_decision["matched"]
    assert row["outcome"] == "dead-lettered" and "Temporal rejected" in row["reason"], row
    assert "data_omitted" not in docs[sent[2].offset] and docs[sent[2].offset]["data"]["id"] == "after"

    by_offset = {int(dict(r.headers)["hookline_dlq_offset"]): r for r in dead}
    assert sorted(by_offset) == [sent[0].offset, sent[1].offset]
    for record in by_offset.values():
        headers = dict(record.headers)
        assert record.value is None and int(headers["hookline_dlq_omitted"]) >= room - 40, headers
        assert headers["hookline_dlq_topic"] == orders_topic.encode()
    assert dict(by_offset[sent[0].offset].headers)["hookline_dlq_definition"] == b"fulfil-order"
    # A replay reads the record where it was, and sends it back whole.
    result = await replay_dlq(kafka_settings, select=lambda reason: reason.startswith("undecodable"))
    assert (result.selected, result.replayed) == (1, 1)
    copies = [r for r in await read_topic(kafka_settings, orders_topic, expect=4) if r.offset > sent[2].offset]
    assert [(r.value, dict(r.headers).get("hookline_replay_origin")) for r in copies] == [
        (not_json, f"{orders_topic}/{sent[1].partition}/{sent[1].offset}".encode())
    ]

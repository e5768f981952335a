"""`POST /ticks/{definition}` for an external scheduler: the same tick event as the in-process
ticker's, so one run per slot however often and by whom a slot is ticked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from temporalio.client import Client

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from hookline.definitions import DefinitionStore
from hookline.runs import workflow_id_for
from hookline.settings import KafkaSettings
from schemas.ticks import TICK_TYPE, tick_event
from tests.conftest import events_of, read_topic, running
from tests.eventually import eventually
from tests.integration.conftest import wait_ready
from triggers.app import TriggersService

TOKEN = "scheduler-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOT = "2026-11-24T02:00:00Z"


async def gateway_with(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, ticks: dict[str, Any]
) -> TestClient[Any, Any]:
    options = GatewayOptions.model_validate({"ticks": ticks})
    client = await aiohttp_client(create_app(GatewaySettings(kafka=kafka_settings, gateway=options)))
    await wait_ready(client)
    return client


@pytest.fixture
async def ticks(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings) -> TestClient[Any, Any]:
    return await gateway_with(aiohttp_client, kafka_settings, {"enabled": True, "auth": {"bearer": [{"value": TOKEN}]}})


async def test_a_tick_is_the_same_event_the_in_process_ticker_makes(
    ticks: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    response = await ticks.post("/ticks/nightly-report", json={"slot": SLOT}, headers=AUTH)
    assert response.status == 202
    answer = await response.json()
    [event] = events_of(await read_topic(kafka_settings, kafka_settings.events_topic, expect=1))
    expected = tick_event("nightly-report", 0, datetime(2026, 11, 24, 2, tzinfo=UTC))
    assert event.id == answer["event_ids"][0]
    assert (event.type, event.subject, event.dedupekey, event.hooklinesource) == (
        TICK_TYPE,
        "nightly-report#0",
        expected.dedupekey,
        expected.hooklinesource,
    )
    assert (answer["dedupekey"], answer["schedule"]) == (expected.dedupekey, "nightly-report#0")


async def test_the_trigger_index_is_the_last_path_segment(
    ticks: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    assert (await ticks.post("/ticks/nightly-report/2", json={"slot": SLOT}, headers=AUTH)).status == 202
    [event] = events_of(await read_topic(kafka_settings, kafka_settings.events_topic, expect=1))
    assert event.subject == "nightly-report#2"
    assert event.dedupekey == tick_event("nightly-report", 2, datetime(2026, 11, 24, 2, tzinfo=UTC)).dedupekey


async def test_without_a_body_the_slot_is_now_to_the_second(ticks: TestClient[Any, Any]) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = await ticks.post("/ticks/nightly-report", headers=AUTH)
    assert response.status == 202
    slot = datetime.fromisoformat((await response.json())["slot"])
    assert before <= slot <= datetime.now(UTC) and slot.microsecond == 0


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/ticks/nightly-report", {"slot": SLOT}, {}, 401),
        ("/ticks/nightly-report", {"slot": SLOT}, {"Authorization": "Bearer wrong-token-0123456789"}, 401),
        ("/ticks/nightly-report", {"slot": "2026-11-24T02:00:00"}, AUTH, 400),
        ("/ticks/Not_An_Id", {"slot": SLOT}, AUTH, 400),
        ("/ticks/nightly-report/x", {"slot": SLOT}, AUTH, 404),
    ],
    ids=["no-credentials", "wrong-token", "slot-without-offset", "bad-definition-id", "bad-index"],
)
async def test_bad_ticks_are_problems_and_produce_nothing(
    ticks: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
) -> None:
    response = await ticks.post(path, json=body, headers=headers)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert TOKEN not in await response.text()
    assert await read_topic(kafka_settings, kafka_settings.events_topic, timeout=1) == []


async def test_ticks_are_off_unless_enabled(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings) -> None:
    client = await gateway_with(aiohttp_client, kafka_settings, {})
    response = await client.post("/ticks/nightly-report", json={"slot": SLOT})
    assert response.status == 404
    assert "gateway.ticks.enabled" in (await response.json())["detail"]


async def test_an_external_scheduler_ticking_a_slot_twice_starts_one_run(
    ticks: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put({"name": "Nightly Report", "trigger": {"type": "schedule"}})  # no cron: ticked from outside
    service = triggers_service()
    async with running(service.run, service.stop):
        for slot in (SLOT, SLOT, "2026-11-25T02:00:00Z"):
            assert (await ticks.post("/ticks/nightly-report", json={"slot": slot}, headers=AUTH)).status == 202
        ids = await run_ids(temporal_client, "nightly-report", expect=2)
    assert ids == [
        workflow_id_for("nightly-report", tick_event("nightly-report", 0, datetime(2026, 11, d, 2, tzinfo=UTC)))
        for d in (24, 25)
    ]


async def run_ids(client: Client, definition: str, expect: int) -> list[str]:
    """The workflow ids of `definition`'s runs, once there are `expect` (and no more appear)."""
    query = f"HooklineDefinitionId = '{definition}'"

    async def ids() -> list[str]:
        return sorted({w.id async for w in client.list_workflows(query)})

    await eventually(ids, f"{expect} runs of {definition}", until=lambda found: len(found) >= expect, timeout=15)
    await asyncio.sleep(1)
    return await ids()


async def test_ticks_over_their_rate_limit_get_429(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings
) -> None:
    client = await gateway_with(
        aiohttp_client, kafka_settings, {"enabled": True, "rate_limit": {"per_second": 0.1, "burst": 1}}
    )
    first = await client.post("/ticks/nightly-report", json={"slot": SLOT})
    second = await client.post("/ticks/nightly-report", json={"slot": SLOT})
    assert (first.status, second.status) == (202, 429)
    assert int(second.headers["Retry-After"]) >= 1

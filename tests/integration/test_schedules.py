"""Schedule triggers on the real stack: tickers put ticks on Kafka, the triggers start one run
per slot however many tickers run, and a ticker that was down applies the missed-tick policy."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.definitions import DefinitionStore, StoredDefinition
from hookline.settings import KafkaSettings
from schemas.events import Event
from schemas.ticks import TICK_TYPE, schedule_id
from tests.conftest import events_of, read_topic, running
from tests.eventually import eventually
from tests.integration.test_api_support import API, auth
from triggers.app import TriggersService
from triggers.schedules import Ticker


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 24, hh, mm, ss, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = at(10, 0)

    def __call__(self) -> datetime:
        return self.now


async def ticks(kafka: KafkaSettings) -> list[Event]:
    return [e for e in events_of(await read_topic(kafka, kafka.events_topic)) if e.type == TICK_TYPE]


async def run_ids(client: Client, definition: str, expect: int) -> list[str]:
    """The workflow ids of `definition`'s runs, once there are `expect` (and no more appear)."""
    query = f"HooklineDefinitionId = '{definition}'"

    async def ids() -> list[str]:
        return sorted({w.id async for w in client.list_workflows(query)})

    await eventually(ids, f"{expect} runs of {definition}", until=lambda found: len(found) >= expect, timeout=10)
    await asyncio.sleep(0.5)
    return await ids()


async def test_two_tickers_running_start_one_run_per_slot(
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
) -> None:
    await store.put({"name": "Every Minute", "trigger": {"type": "schedule", "cron": "* * * * *"}})
    clock = Clock()
    first, second = Ticker(kafka_settings, store, clock=clock), Ticker(kafka_settings, store, clock=clock)
    for ticker in (first, second):
        await ticker.open()
        await ticker.tick_once()  # both see the schedule at 10:00
    clock.now = at(10, 2, 5)
    for ticker in (first, second):
        await ticker.tick_once()
        await ticker.close()
    emitted = await ticks(kafka_settings)
    assert sorted(e.data["slot"] for e in emitted) == [
        "2026-11-24T10:01:00+00:00",
        "2026-11-24T10:01:00+00:00",
        "2026-11-24T10:02:00+00:00",
        "2026-11-24T10:02:00+00:00",
    ]
    service = triggers_service()
    async with running(service.run, service.stop):
        ids = await run_ids(temporal_client, "every-minute", expect=2)
    assert ids == ["every-minute:schedule:0-20261124T100100Z", "every-minute:schedule:0-20261124T100200Z"]


@pytest.mark.parametrize(
    ("missed", "slots"),
    [
        ("skip", ["10:07"]),
        ("once", ["10:06", "10:07"]),
        ("all", ["10:04", "10:05", "10:06", "10:07"]),
    ],
)
async def test_a_ticker_down_for_three_slots_applies_the_missed_policy(
    store: DefinitionStore, kafka_settings: KafkaSettings, missed: str, slots: list[str]
) -> None:
    await store.put({"name": "Minutely", "trigger": {"type": "schedule", "cron": "* * * * *", "missed": missed}})
    clock = Clock()
    before = Ticker(kafka_settings, store, clock=clock)
    await before.open()
    for minute in range(4):  # ticks 10:01, 10:02, 10:03 on time
        clock.now = at(10, minute)
        await before.tick_once()
    await before.close()
    # Down from 10:03 until 10:07:30: 10:04-10:06 missed, 10:07 is within the minute's grace.
    clock.now = at(10, 7, 30)
    after = Ticker(kafka_settings, store, clock=clock)  # a new process: state comes from Kafka
    await after.open()
    await after.tick_once()
    await after.close()
    emitted = [e.data["slot"][11:16] for e in await ticks(kafka_settings)]
    assert emitted == ["10:01", "10:02", "10:03", *slots]


async def test_the_triggers_service_ticks_in_real_time(
    store: DefinitionStore, temporal_client: Client, triggers_service: Callable[..., TriggersService]
) -> None:
    await store.put({"name": "Every Second", "trigger": {"type": "schedule", "cron": "* * * * * *"}})
    service = triggers_service(ticker=True)
    async with running(service.run, service.stop):
        ids = await run_ids(temporal_client, "every-second", expect=2)
    slots = [i.rsplit("-", 1)[1] for i in ids]
    assert len(slots) >= 2 and len(set(slots)) == len(slots)
    assert all(i.startswith("every-second:schedule:0-") for i in ids)


class Definitions:
    """What the ticker reads: the stored definitions, here with one that the store would now
    refuse (stored before cron checks existed) beside a good one."""

    def __init__(self, stored: list[StoredDefinition]) -> None:
        self._stored = stored

    def all(self) -> list[StoredDefinition]:
        return self._stored


async def test_a_schedule_that_fails_at_run_time_is_reported_and_the_others_tick_on(
    store: DefinitionStore, kafka_settings: KafkaSettings, api: TestClient[Any, Any]
) -> None:
    good = await store.put({"name": "Minutely", "trigger": {"type": "schedule", "cron": "* * * * *"}})
    never = await store.put({"name": "Never", "trigger": {"type": "schedule", "cron": "0 0 * * *"}})
    # The 30th of February: croniter searches 50 years for it and raises.
    broken_trigger = never.definition.trigger[0].model_copy(update={"cron": "0 0 30 2 *"})
    broken = dataclasses.replace(never, definition=never.definition.model_copy(update={"trigger": (broken_trigger,)}))
    failed: list[str] = []
    clock = Clock()
    ticker = Ticker(kafka_settings, Definitions([broken, good]), clock=clock, on_failure=failed.append)  # type: ignore[arg-type]
    await ticker.open()
    try:
        await ticker.tick_once()
        clock.now = at(10, 2, 5)  # past its 10 s backoff: tried again
        await ticker.tick_once()
        await ticker.tick_once()  # within its 20 s backoff now: not tried
    finally:
        await ticker.close()

    assert [e.data["slot"][11:16] for e in await ticks(kafka_settings)] == ["10:01", "10:02"]
    assert failed == ["never", "never"]
    failure = ticker.failures[schedule_id("never", 0)]
    assert failure.count == 2 and failure.error.startswith("CroniterBadDateError")
    assert schedule_id("minutely", 0) not in ticker.failures

    # The API shows it on the definition (the gateway follows what the ticker records).
    async def schedules_of(definition_id: str) -> list[dict[str, Any]]:
        response = await api.get(f"{API}/workflows/{definition_id}", headers=auth("ops"))
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body["schedules"]

    async def failing_of_never() -> dict[str, Any] | None:
        failing: dict[str, Any] | None = (await schedules_of("never"))[0]["failing"]
        return failing

    what = "the API to show the schedule failing twice"
    failing = await eventually(failing_of_never, what, until=lambda f: f is not None and f["count"] == 2, interval=0.1)
    assert failing is not None and failing["error"].startswith("CroniterBadDateError")
    assert (await schedules_of("minutely"))[0] == {
        "trigger": 0,
        "cron": "* * * * *",
        "timezone": "UTC",
        "last_tick": "2026-11-24T10:02:00+00:00",
        "failing": None,
    }

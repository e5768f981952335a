"""`GET /api/v1/dlq` and `POST /api/v1/dlq/replay`: what was dead-lettered, why and whose; and a
replay that starts the fixed definition's run exactly once, however often it is asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from tests.conftest import running
from tests.eventually import eventually
from tests.integration.conftest import runs_of, started_runs
from tests.integration.test_api_support import API, auth
from tests.integration.test_dlq_and_explain import STRICT
from triggers.app import TriggersService

LENIENT = {"name": "Lenient", "trigger": {"type": "webhook", "source": "alertmanager"}, "steps": STRICT["steps"]}


async def dead_letters(api: TestClient[Any, Any], query: str = "", token: str = "a") -> Any:
    reply = await api.get(f"{API}/dlq?{query}", headers=auth(token))
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def replay(api: TestClient[Any, Any], body: dict[str, Any], token: str = "a", status: int = 200) -> Any:
    reply = await api.post(f"{API}/dlq/replay", json=body, headers=auth(token))
    assert reply.status == status, await reply.text()
    return await reply.json()


async def test_a_dead_letter_is_listed_with_its_reason_and_replayed_into_exactly_one_run(
    api: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
    notification: Callable[..., dict[str, Any]],
) -> None:
    for body in (STRICT, LENIENT):
        reply = await api.post(f"{API}/workflows", json=body, headers=auth("a"))
        assert reply.status == 201, await reply.text()
    body = notification(alerts=1)
    del body["alerts"][0]["labels"]["job"]  # the strict definition's input needs it
    service = triggers_service()
    async with running(service.run, service.stop):
        reply = await api.post("/hooks/alertmanager", json=body)
        [event_id] = (await reply.json())["event_ids"]
        listed = await eventually(lambda: dead_letters(api), "the dead letter", until=lambda b: b["items"], timeout=20)
        [letter] = listed["items"]
        assert letter["definition_id"] == "team-a~strict-input" and letter["team"] == "team-a"
        assert (letter["event_id"], letter["source"], letter["topic"]) == (
            event_id,
            "alertmanager",
            kafka_settings.events_topic,
        )
        assert "input.service: None is not of type 'string'" in letter["reason"]
        assert letter["first_seen"] == letter["last_seen"] and letter["times"] == 1
        assert (await dead_letters(api, token="b"))["items"] == []  # not team B's business
        assert len((await dead_letters(api, token="ops"))["items"]) == 1
        assert (await dead_letters(api, "reason=timeout"))["items"] == []

        # Still broken: a replay fails again, and the same dead letter is seen a second time.
        dry = await replay(api, {"ids": [letter["id"]], "dry_run": True})
        assert (dry["matched"], dry["replayed"]) == (1, [])
        await replay(api, {"ids": [letter["id"]]})
        again = await eventually(
            lambda: dead_letters(api), "the second failure", until=lambda b: b["items"][0]["times"] == 2, timeout=20
        )
        assert [item["id"] for item in again["items"]] == [letter["id"]]

        fixed = {**STRICT, "inputs": {"type": "object"}}  # the fix: the input is no longer required
        reply = await api.put(f"{API}/workflows/team-a~strict-input", json=fixed, headers=auth("a"))
        assert reply.status == 200, await reply.text()
        for _ in range(2):  # replaying twice starts it once
            assert (await replay(api, {"filter": {"definition": "team-a~strict-input"}}))["replayed"] == [letter["id"]]

        async def strict_row() -> Any:
            page = await api.get(f"{API}/events/{event_id}", headers=auth("a"))
            rows = (await page.json())["decisions"] if page.status == 200 else []
            return next((r for r in rows if r["definition_id"] == "team-a~strict-input"), None)

        row = await eventually(strict_row, "the replay's decision", until=lambda r: r and r["outcome"] == "started")
        strict_id = row["execution_id"]
        assert strict_id.startswith(event_run_id("team-a~strict-input", "alertmanager", ""))
        assert len(await started_runs(temporal_client, strict_id, timeout=20)) == 1
        await asyncio.sleep(1)  # the second replay has been handled too, and started nothing more
        assert len(await runs_of(temporal_client, strict_id)) == 1
        lenient = strict_id.replace("team-a~strict-input", "team-a~lenient")
        assert len(await runs_of(temporal_client, lenient)) == 1  # the replay concerned the strict one only

    await replay(api, {"ids": ["no-such-letter"]}, status=422)
    await replay(api, {"ids": [letter["id"]]}, token="b", status=422)  # another team's letter does not exist
    await replay(api, {"ids": [letter["id"]], "filter": {"reason": "x"}}, status=422)
    reply = await api.get(f"{API}/dlq?team=team-b", headers=auth("a"))
    assert reply.status == 403

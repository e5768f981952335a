"""`GET /api/v1/runners`: a pool shows no pollers until a worker serving it starts."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog
from tests.eventually import eventually
from tests.integration.test_api_support import API, auth
from worker.app import build_workers
from worker.settings import WorkerSettings


async def shell_pool(api: TestClient[Any, Any]) -> dict[str, Any]:
    reply = await api.get(f"{API}/runners", headers=auth("a-read"))
    assert reply.status == 200
    pools = {p["pool"]: p for p in (await reply.json())["items"]}
    pool: dict[str, Any] = pools["shell"]
    return pool


async def test_a_pool_goes_from_no_pollers_to_polling_when_a_worker_starts(
    api: TestClient[Any, Any],
    temporal_client: Client,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
) -> None:
    before = await shell_pool(api)
    assert (before["polling"], before["pollers"], before["kinds"]) == (False, 0, ["shell"])
    assert before["task_queue"] == temporal_settings.runner_queue("shell")
    async with AsyncExitStack() as stack:
        for w in build_workers(WorkerSettings(temporal=temporal_settings), temporal_client, agents):
            await stack.enter_async_context(w)
        after = await eventually(
            lambda: shell_pool(api), "the shell pool to be polled", until=lambda pool: pool["polling"], interval=0.1
        )
    assert after["polling"] is True and after["pollers"] >= 1


async def test_runners_need_a_token(api: TestClient[Any, Any]) -> None:
    assert (await api.get(f"{API}/runners")).status == 401

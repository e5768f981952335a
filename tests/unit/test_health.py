"""Liveness that a stuck event loop cannot fake, and readiness that names what is missing."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from hookline.health import HealthRoutes, LoopWatch


async def test_a_loop_blocked_longer_than_the_bound_is_reported_until_it_turns_again() -> None:
    watch = LoopWatch(interval_s=0.05, bound_s=0.3)
    watch.start()
    try:
        await asyncio.sleep(0.2)
        assert await watch.check() is None
        time.sleep(0.6)  # noqa: ASYNC251 - the loop does nothing else meanwhile, as in a wedged process
        problem = await watch.check()
        assert problem is not None and problem.startswith("event loop lag 0.") and problem.endswith("exceeds 0.3s")
        await asyncio.sleep(0.2)
        assert await watch.check() is None
    finally:
        await watch.stop()


async def test_healthz_fails_while_the_loop_lags_and_readyz_names_the_failing_dependency(
    aiohttp_client: AiohttpClient,
) -> None:
    connected = False

    async def kafka() -> str | None:
        return None if connected else "not connected to Kafka"

    app = web.Application()

    async def block(request: web.Request) -> web.Response:
        time.sleep(0.6)  # noqa: ASYNC251 - blocks the loop on purpose
        return web.Response()

    app.router.add_get("/block", block)
    HealthRoutes.of(ready={"kafka": kafka}, watch=LoopWatch(interval_s=0.05, bound_s=0.3)).add_to(app)
    client = await aiohttp_client(app)
    await asyncio.sleep(0.2)

    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (
        503,
        {"status": "not ready", "problems": {"kafka": "not connected to Kafka"}},
    )
    connected = True
    assert (await client.get("/readyz")).status == 200

    await client.get("/block")
    lagging = await client.get("/healthz")
    assert lagging.status == 503
    assert "event loop lag" in (await lagging.json())["problems"]["loop"]

"""The webhooks' direct dispatch (`gateway.app.dispatch_hooks_directly`): a POST to a configured
hook path reaches its handler without aiohttp's router, answered as the problem middleware
answers; everything else is served by the app as before.

The hook handlers here are in `hooks` only, not in the router: a request that reaches one went
the direct way, and one the router serves gets its 404 instead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientTimeout, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import dispatch_hooks_directly
from gateway.errors import UNAVAILABLE_COUNTER, InvalidPayload, Unavailable, problem_middleware
from gateway.metrics import GatewayMetrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def hook(request: web.Request) -> web.Response:
    return web.Response(status=202, body=await request.read())


async def refused(request: web.Request) -> web.Response:
    raise InvalidPayload("not a notification")


async def unavailable(request: web.Request) -> web.Response:
    raise Unavailable("Kafka did not acknowledge", retry_after_s=3, cause="kafka_unacked")


async def routed(request: web.Request) -> web.Response:
    return web.Response(text="routed")


async def client_of(
    aiohttp_client: AiohttpClient, *, middlewares: list[Handler] | None = None, metrics: GatewayMetrics | None = None
) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=middlewares or [problem_middleware])
    app[UNAVAILABLE_COUNTER] = (metrics or GatewayMetrics()).unavailable
    app.router.add_post("/routed", routed)
    dispatch_hooks_directly(app, {"/hooks/a": hook, "/hooks/refused": refused, "/hooks/unavailable": unavailable})
    return await aiohttp_client(app)


async def test_a_post_to_a_hook_reaches_its_handler(aiohttp_client: AiohttpClient) -> None:
    client = await client_of(aiohttp_client)
    response = await client.post("/hooks/a?x=1", data=b"body")
    assert (response.status, await response.read()) == (202, b"body")


async def test_other_routes_are_served_by_the_app(aiohttp_client: AiohttpClient) -> None:
    client = await client_of(aiohttp_client)
    assert await (await client.post("/routed")).text() == "routed"
    missing = await client.post("/nowhere")
    assert (missing.status, missing.content_type) == (404, "application/problem+json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/hooks/a"),  # another method: the router's answer
        ("POST", "/hooks%2Fa"),  # the router keeps %2F encoded: no hook's path
        ("POST", "/hooks/a/"),
    ],
)
async def test_what_is_not_a_post_to_a_hook_path_goes_to_the_router(
    aiohttp_client: AiohttpClient, method: str, path: str
) -> None:
    client = await client_of(aiohttp_client)
    response = await client.request(method, path, data=b"body")
    assert (response.status, response.content_type) == (404, "application/problem+json")


async def test_a_request_that_expects_100_continue_goes_to_the_router(aiohttp_client: AiohttpClient) -> None:
    client = await client_of(aiohttp_client)
    response = await client.post("/hooks/a", data=b"body", expect100=True, timeout=ClientTimeout(total=5))
    assert response.status == 404  # the router's expect handler answered it, and found no route


async def test_a_hooks_errors_are_problems_and_its_503s_counted_by_cause(aiohttp_client: AiohttpClient) -> None:
    metrics = GatewayMetrics()
    client = await client_of(aiohttp_client, metrics=metrics)
    bad = await client.post("/hooks/refused", data=b"{}")
    assert (bad.status, bad.content_type) == (400, "application/problem+json")
    assert (await bad.json())["instance"] == "/hooks/refused"
    later = await client.post("/hooks/unavailable", data=b"{}")
    assert (later.status, later.headers["Retry-After"]) == (503, "3")
    assert metrics.registry.get_sample_value("hookline_gateway_unavailable_total", {"cause": "kafka_unacked"}) == 1


async def test_with_another_middleware_every_request_goes_through_the_app(aiohttp_client: AiohttpClient) -> None:
    seen: list[str] = []

    @web.middleware
    async def watching(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append(request.path)
        return await handler(request)

    client = await client_of(aiohttp_client, middlewares=[watching, problem_middleware])
    assert (await client.post("/hooks/a", data=b"body")).status == 404  # not in the router
    assert seen == ["/hooks/a"]

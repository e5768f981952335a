"""`gateway.ingress.take_body`: the webhook's body taken whole from the stream when it has all
arrived, checked against the limit there; read with the timeout of `read_body` when it has not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.errors import PayloadTooLarge
from gateway.ingress import take_body

LIMIT = 100


async def client_for(
    aiohttp_client: AiohttpClient, *, wait_for_whole_body: bool
) -> tuple[TestClient[web.Request, web.Application], dict[str, bool]]:
    seen: dict[str, bool] = {}

    async def handler(request: web.Request) -> web.Response:
        if wait_for_whole_body:
            await request.content.wait_eof()
        seen["eof"] = request.content.is_eof()
        try:
            body = await take_body(request, LIMIT, 5.0)
        except PayloadTooLarge as exc:
            return web.Response(status=exc.status, text=exc.detail)
        return web.Response(body=body)

    app = web.Application()
    app.router.add_post("/", handler)
    return await aiohttp_client(app), seen


async def pieces(*parts: bytes, pause_s: float = 0.0) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(pause_s)


async def test_a_body_that_arrived_in_pieces_is_taken_whole(aiohttp_client: AiohttpClient) -> None:
    client, seen = await client_for(aiohttp_client, wait_for_whole_body=True)
    response = await client.post("/", data=pieces(b"one ", b"two ", b"three"))
    assert (response.status, await response.read()) == (200, b"one two three")
    assert seen["eof"]


async def test_a_chunked_body_over_the_limit_is_refused_with_its_size(aiohttp_client: AiohttpClient) -> None:
    # Chunked: no Content-Length to refuse it by before it is read.
    client, seen = await client_for(aiohttp_client, wait_for_whole_body=True)
    response = await client.post("/", data=pieces(b"x" * 60, b"x" * 60))
    assert response.status == 413
    assert await response.text() == f"body of 120 bytes exceeds the limit of {LIMIT} bytes"
    assert seen["eof"]


async def test_a_body_at_the_limit_is_taken(aiohttp_client: AiohttpClient) -> None:
    client, _ = await client_for(aiohttp_client, wait_for_whole_body=True)
    response = await client.post("/", data=pieces(b"x" * 50, b"y" * 50))
    assert (response.status, await response.read()) == (200, b"x" * 50 + b"y" * 50)


async def test_a_body_still_arriving_is_read_to_its_end(aiohttp_client: AiohttpClient) -> None:
    client, seen = await client_for(aiohttp_client, wait_for_whole_body=False)
    response = await client.post("/", data=pieces(b"first ", b"second", pause_s=0.3))
    assert (response.status, await response.read()) == (200, b"first second")
    assert not seen["eof"]  # the handler started before the second piece: the read_body way

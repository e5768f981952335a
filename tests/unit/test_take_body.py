"""`gateway.ingress.take_body`: the webhook's body taken whole from the stream when it has all
arrived, read with the timeout of `read_body` when it has not; checked against the limit both ways.
And `read_body`'s refusal of a chunked body over the app's limit, told as `take_body` tells it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.errors import PayloadTooLarge
from gateway.ingress import read_body, take_body

LIMIT = 100


async def client_for(
    aiohttp_client: AiohttpClient, *, wait_for_whole_body: bool, read_first: bool = False
) -> tuple[TestClient[web.Request, web.Application], dict[str, bool]]:
    seen: dict[str, bool] = {}

    async def handler(request: web.Request) -> web.Response:
        if read_first:
            await request.read()
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


async def test_a_body_still_arriving_over_the_limit_is_refused_with_its_size(aiohttp_client: AiohttpClient) -> None:
    # The app's own limit (aiohttp's client_max_size) is its default, 1 MiB: take_body's applies.
    client, seen = await client_for(aiohttp_client, wait_for_whole_body=False)
    response = await client.post("/", data=pieces(b"x" * 60, b"x" * 60, pause_s=0.3))
    assert response.status == 413
    assert await response.text() == f"body of 120 bytes exceeds the limit of {LIMIT} bytes"
    assert not seen["eof"]


async def test_a_body_read_before_is_the_body_read(aiohttp_client: AiohttpClient) -> None:
    client, _ = await client_for(aiohttp_client, wait_for_whole_body=True, read_first=True)
    response = await client.post("/", data=pieces(b"read ", b"before"))
    assert (response.status, await response.read()) == (200, b"read before")


async def test_read_body_tells_a_chunked_body_over_the_apps_limit_as_too_large(aiohttp_client: AiohttpClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        try:
            await read_body(request, 5.0)
        except PayloadTooLarge as exc:
            return web.Response(status=exc.status, text=exc.detail)
        return web.Response(text="read")

    app = web.Application(client_max_size=LIMIT)
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    response = await client.post("/", data=pieces(b"x" * 60, b"x" * 60, pause_s=0.1))
    assert response.status == 413
    assert await response.text() == f"body exceeds the limit of {LIMIT} bytes"

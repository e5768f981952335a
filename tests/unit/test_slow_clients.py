"""Slow clients on a real socket: on every route a body that does not arrive in time is answered
408 and the connection closed, and a request whose headers trickle in is cut off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewayOptions, GatewaySettings
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import AgentCatalog

READ_TIMEOUT_S = 0.5
HEADER_TIMEOUT_S = 0.5
TOKEN = ApiToken(name="ci", token=SecretStr("unit-test-secret-token"), team="team-a", scopes=["read", "write"])


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        gateway=GatewayOptions(read_timeout_s=READ_TIMEOUT_S, header_timeout_s=HEADER_TIMEOUT_S),
        api=ApiOptions(tokens=[TOKEN]),
    )
    return await aiohttp_client(create_app(settings, agents=AgentCatalog()))


async def connect(gateway: TestClient[Any, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = gateway.server.port
    assert port is not None
    return await asyncio.open_connection("127.0.0.1", port)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/workflows"),
        ("PUT", "/api/v1/workflows/deploy"),
        ("POST", "/api/v1/workflows/validate"),
        ("POST", "/api/v1/events/explain"),
        ("POST", "/api/v1/workflows/deploy/start"),
        ("GET", "/healthz"),
    ],
)
async def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(
    gateway: TestClient[Any, Any], method: str, path: str
) -> None:
    reader, writer = await connect(gateway)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer unit-test-secret-token\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    writer.write(head.encode())
    started = time.monotonic()
    async with asyncio.timeout(5):
        answer = await reader.read()  # to the end: the server closes the connection
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert time.monotonic() - started < READ_TIMEOUT_S + 2


async def test_headers_that_trickle_in_are_cut_off(gateway: TestClient[Any, Any]) -> None:
    reader, writer = await connect(gateway)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
    started = time.monotonic()
    closed_after = None
    async with asyncio.timeout(10):
        for i in range(100):  # a header line every 0.1 s, never the blank line that ends them
            await asyncio.sleep(0.1)
            if reader.at_eof() or writer.is_closing():
                break
            try:
                writer.write(f"X-Slow-{i}: 1\r\n".encode())
                await writer.drain()
            except ConnectionError:
                break
            if reader.at_eof():
                break
        answer = await reader.read()
        closed_after = time.monotonic() - started
    writer.close()
    assert answer == b""  # no answer at all: the request never arrived
    assert closed_after < HEADER_TIMEOUT_S + 2

"""Fixtures for tests on the real stack."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from hookline.settings import KafkaSettings


async def wait_ready(client: TestClient[Any, Any]) -> None:
    """The producer connects in the background; wait until the gateway says it is ready."""
    for _ in range(100):
        if (await client.get("/readyz")).status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("gateway never became ready")


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings) -> TestClient[Any, Any]:
    """A ready gateway on this test's topics, with a 64 KiB body limit."""
    settings = GatewaySettings(kafka=kafka_settings, gateway=GatewayOptions(max_body_bytes=64 * 1024))
    client = await aiohttp_client(create_app(settings))
    await wait_ready(client)
    return client

"""Two real gateway processes (two replicas behind a load balancer) writing the same definitions
at the same moment: every write lands as a version of its own, readable afterwards with its own
content, or is refused with 409/412. None is lost, no version number is given twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from tests.eventually import eventually
from tests.integration.conftest import start_component
from tests.integration.test_api_support import API, TOKENS, auth

WRITES = 20


def start_gateway(kafka: KafkaSettings, temporal: TemporalSettings, port: int) -> subprocess.Popen[bytes]:
    tokens = [{**t.model_dump(), "token": t.token.get_secret_value()} for t in TOKENS.values()]
    return start_component(
        "gateway",
        kafka,
        temporal,
        HOOKLINE_GATEWAY__PORT=str(port),
        HOOKLINE_API__TOKENS=json.dumps(tokens),
        HOOKLINE_API__WRITE_TIMEOUT_S="60",
    )


@pytest.fixture
def gateways(kafka_settings: KafkaSettings, temporal_settings: TemporalSettings) -> Iterator[list[str]]:
    """The base URLs of two gateway processes on this test's topics."""
    ports = [free_port(), free_port()]
    processes = [start_gateway(kafka_settings, temporal_settings, port) for port in ports]
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=auth("a"), timeout=aiohttp.ClientTimeout(total=90)) as session:
        yield session


async def wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    async def serving() -> bool:
        async with http.get(f"{base}{API}/workflows") as response:
            return response.status == 200

    what = f"the gateway at {base} to serve the API"
    await eventually(serving, what, timeout=60, interval=0.1, retrying=aiohttp.ClientConnectionError)


def body(definition_id: str, content: str) -> dict[str, Any]:
    return {
        "id": definition_id,
        "name": definition_id,
        "description": content,
        "steps": [{"name": "b", "agent": "builder"}],
    }


async def writer(
    http: aiohttp.ClientSession, base: str, definition_id: str, name: str, conditional: bool
) -> list[tuple[int, str, int | None]]:
    """WRITES PUTs of distinct content: (status, content, version written or None). A
    conditional writer sends If-Match with the version it last read (or wrote)."""
    outcomes: list[tuple[int, str, int | None]] = []
    etag: str | None = None
    for n in range(WRITES):
        content = f"{name}-{n}"
        headers = {"If-Match": etag} if conditional and etag else {}
        async with http.put(
            f"{base}{API}/workflows/{definition_id}", json=body(definition_id, content), headers=headers
        ) as r:
            answer = await r.json(content_type=None)
            version = answer.get("version") if r.status < 300 else None
            outcomes.append((r.status, content, version))
            etag = r.headers.get("ETag", etag)
        if conditional and n % 3 == 2:  # sometimes start again from what is current
            async with http.get(f"{base}{API}/workflows/{definition_id}") as r:
                etag = r.headers.get("ETag") if r.status == 200 else None
    return outcomes


async def test_two_gateway_processes_writing_the_same_definitions_lose_no_write(
    gateways: list[str], http: aiohttp.ClientSession
) -> None:
    for base in gateways:
        await wait_ready(http, base)
    plan = [
        (definition_id, base, f"{definition_id}@{i}-{'cas' if conditional else 'plain'}", conditional)
        for definition_id in ("alpha", "beta")
        for i, base in enumerate(gateways)
        for conditional in (False, True)
    ]

    results = await asyncio.gather(*(writer(http, base, d, name, cas) for d, base, name, cas in plan))

    for definition_id in ("alpha", "beta"):
        outcomes = [o for (d, *_), result in zip(plan, results, strict=True) if d == definition_id for o in result]
        assert {status for status, _, _ in outcomes} <= {200, 201, 409, 412}, outcomes
        landed = {version: content for status, content, version in outcomes if status in (200, 201)}
        written = [version for status, _, version in outcomes if status in (200, 201)]
        assert len(written) == len(landed), f"a version was given to two writes: {sorted(written)}"
        refused = {content for status, content, _ in outcomes if status in (409, 412)}
        assert len(landed) > WRITES  # both gateways' unconditional writes landed, at least
        for base in gateways:  # every landed write reads back from either replica, as written

            async def read_back(base: str = base, definition_id: str = definition_id) -> tuple[Any, dict[int, str]]:
                async with http.get(f"{base}{API}/workflows/{definition_id}") as r:
                    current = await r.json()
                stored = {}
                for version in current["versions"]:
                    async with http.get(f"{base}{API}/workflows/{definition_id}?version={version}") as r:
                        stored[version] = (await r.json())["definition"]["description"]
                return current, stored

            # A replica has read its own writes when it answers them; another's, moments later.
            what = f"every landed write of {definition_id} on {base}"
            current, stored = await eventually(read_back, what, until=lambda c, landed=landed: c[1] == landed)
            assert stored == landed  # nothing missing, nothing written that was reported refused
            assert not refused & set(stored.values()), "a refused write was stored"
            assert current["version"] == max(current["versions"])

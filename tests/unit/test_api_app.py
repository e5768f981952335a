"""The API with its dependencies down (nothing listens at their addresses): it refuses with the
right status in the right order, and the rest of the gateway is unaffected."""

from __future__ import annotations

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

API = "/api/v1"
TOKEN = ApiToken(name="ci", token=SecretStr("unit-test-secret-token"), team="team-a", scopes=["read", "write"])
AUTH = {"Authorization": "Bearer unit-test-secret-token"}


def settings(*tokens: ApiToken, max_body_bytes: int = 4096) -> GatewaySettings:
    """A gateway whose Kafka and Temporal addresses nothing listens at, with `tokens`."""
    return GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        gateway=GatewayOptions(max_body_bytes=max_body_bytes),
        api=ApiOptions(tokens=list(tokens)),
    )


@pytest.fixture
async def api(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(TOKEN), agents=AgentCatalog()))


async def test_api_answers_503_with_retry_after_while_definitions_cannot_load(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"{API}/workflows", headers=AUTH)
    assert (response.status, response.content_type) == (503, "application/problem+json")
    assert response.headers["Retry-After"] == "5"


async def test_health_answers_while_the_api_dependencies_are_down(api: TestClient[Any, Any]) -> None:
    assert (await api.get("/healthz")).status == 200


async def test_token_is_checked_before_availability(api: TestClient[Any, Any]) -> None:
    assert (await api.get(f"{API}/workflows")).status == 401


async def test_body_is_checked_before_availability(api: TestClient[Any, Any]) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    assert (await api.post(f"{API}/workflows", data=b"[1]", headers=headers)).status == 400


async def test_body_over_the_limit_is_413(api: TestClient[Any, Any]) -> None:
    response = await api.post(f"{API}/workflows", json={"name": "x" * 8000}, headers=AUTH)
    assert (response.status, response.content_type) == (413, "application/problem+json")


async def test_unknown_api_path_is_a_404_problem(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"{API}/nothing-here", headers=AUTH)
    assert (response.status, response.content_type) == (404, "application/problem+json")


async def test_unsupported_method_is_a_405_problem_with_allow(api: TestClient[Any, Any]) -> None:
    response = await api.patch(f"{API}/workflows", headers=AUTH)
    assert (response.status, response.content_type) == (405, "application/problem+json")
    assert "GET" in response.headers["Allow"]


async def test_agents_need_no_dependency(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"{API}/agents", headers=AUTH)
    assert (response.status, await response.json()) == (200, {"items": []})


async def test_without_configured_tokens_every_api_request_is_401(aiohttp_client: AiohttpClient) -> None:
    client = await aiohttp_client(create_app(settings(), agents=AgentCatalog()))
    assert (await client.get(f"{API}/agents", headers=AUTH)).status == 401

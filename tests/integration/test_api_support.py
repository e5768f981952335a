"""Helpers shared by the REST API tests (no tests here): the tokens they use and a gateway
whose API is ready on the test's own Kafka topics and Temporal task queues."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewaySettings, Scope
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import AgentCatalog
from tests.eventually import eventually
from tests.openapi_contract import record_answers

API = "/api/v1"

ALL: list[Scope] = ["read", "write", "execute"]


def _token(name: str, secret: str, team: str, scopes: list[Scope]) -> ApiToken:
    return ApiToken(name=name, token=SecretStr(secret), team=team, scopes=scopes)


TOKENS = {
    "a": _token("team-a-ci", "secret-token-of-team-a", "team-a", ALL),
    "a-read": _token("team-a-viewer", "secret-token-a-reader", "team-a", ["read"]),
    "a-write": _token("team-a-author", "secret-token-a-writer", "team-a", ["read", "write"]),
    "b": _token("team-b-ci", "secret-token-of-team-b", "team-b", ALL),
    "seed": _token("seed", "secret-token-team-uuid", "team-uuid", ALL),
    "ops": _token("operator", "secret-operator-token", "*", ALL),
}


def auth(key: str) -> dict[str, str]:
    """The Authorization header of token `key`."""
    return {"Authorization": f"Bearer {TOKENS[key].token.get_secret_value()}"}


def api_settings(kafka: KafkaSettings, temporal: TemporalSettings, **api: Any) -> GatewaySettings:
    return GatewaySettings(kafka=kafka, temporal=temporal, api=ApiOptions(tokens=list(TOKENS.values()), **api))


async def wait_api_ready(client: TestClient[Any, Any], timeout: float = 30.0) -> None:
    """The definitions load in the background; wait until the API stops answering 503."""

    async def ready() -> bool:
        return (await client.get(f"{API}/workflows", headers=auth("ops"))).status == 200

    await eventually(ready, "the API to be ready", timeout=timeout, interval=0.1)


async def start_api(
    aiohttp_client: AiohttpClient, settings: GatewaySettings, agents: AgentCatalog
) -> TestClient[Any, Any]:
    """A ready gateway; each answer of its API must conform to the OpenAPI document, or the test
    fails as the gateway stops (`tests.openapi_contract`)."""
    app = create_app(settings, agents=agents)
    record_answers(app)
    client = await aiohttp_client(app)
    await wait_api_ready(client)
    return client

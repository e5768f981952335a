"""Which topics a `kafka` trigger may name: never Hookline's own or Kafka's internal ones, and
other topics only as the operator allows each team (`kafka.trigger_topics`); refused at save."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewaySettings
from hookline.definitions import DefinitionStore
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from hookline.topics import topic_errors
from schemas.agents import Agent, AgentCatalog
from schemas.workflow import DefinitionError, parse_definition

EVERYTHING = {"*": ["*"]}


def kafka(trigger_topics: dict[str, list[str]] | None = None) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="hookline", trigger_topics=trigger_topics or {}
    )


def subscribing(topic: str, team: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "Reader", "trigger": {"type": "kafka", "topic": topic}}
    doc["steps"] = [{"name": "a", "agent": "x"}]
    return doc if team is None else {**doc, "team_id": team}


def errors_for(doc: dict[str, Any], settings: KafkaSettings) -> list[str]:
    return [str(e) for e in topic_errors(parse_definition(doc), settings)]


@pytest.mark.parametrize(
    "topic",
    [
        "hookline.events",
        "hookline.events.dlq",
        "hookline.workflows",
        "hookline.schedules",
        "hookline.anything-added-later",
        "hookline",
        "hookline_workflows",  # Kafka treats "_" and "." alike: the same topic to the broker's metrics
        "__consumer_offsets",
        "__transaction_state",
        "_schemas",
    ],
)
def test_own_and_internal_topics_are_refused_even_when_everything_is_allowed(topic: str) -> None:
    [error] = errors_for(subscribing(topic), kafka(EVERYTHING))
    assert error.startswith(f'trigger.topic: "{topic}" cannot be subscribed to')


def test_by_default_no_topic_is_allowed() -> None:
    [error] = errors_for(subscribing("orders"), kafka())
    assert error == (
        'trigger.topic: team "default" may not subscribe to topic "orders"; the operator allows topics per team in '
        "kafka.trigger_topics"
    )


def test_the_allow_list_is_per_team_with_patterns() -> None:
    settings = kafka({"payments": ["orders.*", "refunds"], "*": ["public.*"]})
    assert errors_for(subscribing("orders.eu", "payments"), settings) == []
    assert errors_for(subscribing("refunds", "payments"), settings) == []
    assert errors_for(subscribing("public.news", "search"), settings) == []
    assert errors_for(subscribing("orders.eu", "search"), settings) != []
    assert errors_for(subscribing("refunds.eu", "payments"), settings) != []  # a pattern matches the whole name


def test_each_refused_trigger_is_located() -> None:
    doc = {
        "name": "Reader",
        "trigger": [{"type": "webhook", "source": "alertmanager"}, {"type": "kafka", "topic": "hookline.events.dlq"}],
        "steps": [{"name": "a", "agent": "x"}],
    }
    [error] = errors_for(doc, kafka(EVERYTHING))
    assert error.startswith('trigger[1].topic: "hookline.events.dlq" cannot be subscribed to')


async def test_the_store_refuses_to_save_a_forbidden_topic() -> None:
    # Refused before anything is written: the store never reaches (the absent) Kafka.
    store = DefinitionStore(kafka(EVERYTHING))
    with pytest.raises(DefinitionError) as refused:
        await store.put(subscribing("hookline.workflows"))
    assert [e.location for e in refused.value.errors] == ["trigger.topic"]


TOKEN = ApiToken(name="ci", token=SecretStr("unit-test-secret-token"), team="team-a", scopes=["read", "write"])
AUTH = {"Authorization": "Bearer unit-test-secret-token"}


@pytest.fixture
async def api(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    settings = GatewaySettings(
        kafka=kafka({"team-a": ["orders"]}),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        api=ApiOptions(tokens=[TOKEN]),
    )
    agents = AgentCatalog(agents={"x": Agent(name="x", runner="shell", command=("true",))})
    return await aiohttp_client(create_app(settings, agents=agents))


@pytest.mark.parametrize("topic", ["hookline.workflows", "payments"])
async def test_the_api_refuses_a_definition_naming_a_topic_its_team_may_not_read(
    api: TestClient[Any, Any], topic: str
) -> None:
    response = await api.post("/api/v1/workflows", json=subscribing(topic), headers=AUTH)
    assert (response.status, response.content_type) == (422, "application/problem+json")
    body = await response.json()
    assert [e["location"] for e in body["errors"]] == ["trigger.topic"]
    assert topic in body["errors"][0]["message"]
    validated = await (await api.post("/api/v1/workflows/validate", json=subscribing(topic), headers=AUTH)).json()
    assert (validated["valid"], validated["errors"]) == (False, body["errors"])


async def test_the_api_accepts_an_allowed_topic_up_to_the_store(api: TestClient[Any, Any]) -> None:
    # Valid: it gets as far as the definitions store, which is down here (503), not a 422.
    response = await api.post("/api/v1/workflows", json=subscribing("orders"), headers=AUTH)
    assert response.status == 503

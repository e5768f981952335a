"""An author's `inputs` schema is bounded: no references, limited nesting; and evaluating it on
any input ends in the typed validation error, never in a crash."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import ApiOptions, ApiToken, GatewaySettings
from hookline.definitions import StoredDefinition
from hookline.runs import NotStartable, build_request
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import AgentCatalog
from schemas.workflow import DefinitionError, WorkflowDefinition, parse_definition


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("inputs", "where"),
    [
        ({"$ref": "#"}, "inputs.$ref"),
        ({"properties": {"x": {"$ref": "#/$defs/nothing"}}}, "inputs.properties.x.$ref"),
        ({"anyOf": [{"$dynamicRef": "#meta"}]}, "inputs.anyOf[0].$dynamicRef"),
        ({"items": {"$recursiveRef": "#"}}, "inputs.items.$recursiveRef"),
        ({"$defs": {"self": {"$ref": "#/$defs/self"}}}, "inputs.$defs.self.$ref"),
    ],
)
def test_a_reference_in_inputs_is_rejected_with_its_location(inputs: dict[str, Any], where: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "inputs": inputs})
    [error] = info.value.errors
    assert error.location == where
    assert "write the schema out in place" in error.message


def test_an_inputs_schema_nested_too_deep_is_rejected_not_a_recursion_error() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "inputs": nested(400)})
    [error] = info.value.errors
    assert error.location == "inputs"
    assert "nested more than 64 levels" in error.message


def test_an_inputs_schema_within_the_nesting_limit_is_accepted() -> None:
    definition = parse_definition({"name": "x", "inputs": nested(20)})
    assert definition.checked_input({}) == {}


# A definition stored before references were refused is still read back (the store skips what
# it cannot parse, but the model itself takes any mapping): evaluating it must not crash.
UNUSABLE = [{"$ref": "#"}, {"properties": {"x": {"$ref": "#/$defs/nothing"}}}]


@pytest.mark.parametrize("inputs", UNUSABLE)
def test_checked_input_turns_a_failing_schema_into_a_definition_error(inputs: dict[str, Any]) -> None:
    definition = WorkflowDefinition(id="x", name="x", inputs=inputs)
    with pytest.raises(DefinitionError) as info:
        definition.checked_input({"x": 1})
    [error] = info.value.errors
    assert error.location == "inputs"
    assert "cannot be applied" in error.message


@pytest.mark.parametrize("inputs", UNUSABLE)
def test_a_start_with_a_failing_schema_is_not_startable(inputs: dict[str, Any]) -> None:
    stored = StoredDefinition(
        "x", 1, "digest", {"name": "x", "inputs": inputs}, WorkflowDefinition(id="x", name="x", inputs=inputs)
    )
    with pytest.raises(NotStartable) as info:
        build_request(stored, AgentCatalog(), TemporalSettings(), input={"x": 1})
    assert [e.location for e in info.value.errors] == ["inputs"]


async def test_the_api_refuses_a_definition_whose_inputs_refer_to_themselves(aiohttp_client: AiohttpClient) -> None:
    token = ApiToken(name="ci", token=SecretStr("unit-test-secret-token"), team="team-a", scopes=["read", "write"])
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        api=ApiOptions(tokens=[token]),
    )
    client = await aiohttp_client(create_app(settings, agents=AgentCatalog()))
    response = await client.post(
        "/api/v1/workflows",
        json={"name": "x", "inputs": {"$ref": "#"}},
        headers={"Authorization": "Bearer unit-test-secret-token"},
    )
    assert (response.status, response.content_type) == (422, "application/problem+json")
    assert [e["location"] for e in (await response.json())["errors"]] == ["inputs.$ref"]

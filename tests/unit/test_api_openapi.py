"""The OpenAPI document matches the routes the gateway serves under /api/v1."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from pytest_aiohttp import AiohttpClient
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.api import API_PREFIX, ROUTES
from gateway.app import create_app
from gateway.settings import GatewaySettings
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import AgentCatalog
from tests.conftest import seed_body

SPEC_URI = "urn:hookline:openapi"


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
    )
    return await aiohttp_client(create_app(settings, agents=AgentCatalog()))


@pytest.fixture
async def spec(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get(f"{API_PREFIX}/openapi.json")
    assert (response.status, response.content_type) == (200, "application/json")
    document: dict[str, Any] = await response.json()
    return document


def served(client: TestClient[Any, Any]) -> set[tuple[str, str]]:
    routes = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith(API_PREFIX) and route.method != "HEAD":
            routes.add((route.method.lower(), path))
    return routes


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item}


def test_every_api_route_is_in_the_openapi_document(client: TestClient[Any, Any], spec: dict[str, Any]) -> None:
    assert served(client) and served(client) <= documented(spec)


def test_every_operation_in_the_openapi_document_is_served(client: TestClient[Any, Any], spec: dict[str, Any]) -> None:
    assert documented(spec) <= served(client)


def test_document_is_openapi_3_1_with_bearer_tokens(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A configured api.tokens entry.",
    }


def test_operations_have_unique_ids(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(ROUTES)


def test_scoped_operations_name_their_scope_and_answer_401_and_403(spec: dict[str, Any]) -> None:
    for route in ROUTES:
        operation = spec["paths"][route.url][route.method.lower()]
        assert operation["x-hookline-scope"] == route.scope
        if route.scope is None:
            assert operation["security"] == [] and "401" not in operation["responses"]
        else:
            assert operation["security"] == [{"bearer": []}]
            assert {"401", "403"} <= set(operation["responses"])


def test_error_answers_are_problem_details(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert list(answer["content"]) == ["application/problem+json"]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    for ref in _refs(spec):
        node: Any = spec
        assert ref.startswith("#/"), ref
        for part in ref[2:].split("/"):
            node = node[part]


def _validator(spec: dict[str, Any], component: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, Resource(spec, DRAFT202012))
    return Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/{component}"}, registry=registry)


def test_seed_body_matches_the_documented_definition_schema(spec: dict[str, Any]) -> None:
    assert list(_validator(spec, "WorkflowDefinition").iter_errors(seed_body())) == []


def test_definition_schema_of_the_document_refuses_a_step_without_a_name(spec: dict[str, Any]) -> None:
    body = {"name": "x", "steps": [{"agent": "builder"}]}
    assert not _validator(spec, "WorkflowDefinition").is_valid(body)

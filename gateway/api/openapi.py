"""The OpenAPI 3.1 document of the API, built from the route table (so it cannot drift from the
routes) and served unauthenticated at /api/v1/openapi.json.

The answers' schemas are generated from the models the handlers build (`gateway.api.models`);
the workflow definition schema is `schemas/workflow.schema.json` itself, its `$defs` lifted into
the components.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from gateway.api.auth import Principal
from gateway.api.models import ApprovalRequest, BulkRequest, DlqReplayRequest, RetryRequest
from gateway.api.routing import Route

__all__ = ["SPEC", "build_spec", "encode_spec", "serve_openapi"]

SPEC = web.AppKey("openapi", bytes)
_DEFINITION = "WorkflowDefinition"
_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Where the input is wrong (validation failures).",
            "items": _ref("SchemaError"),
        },
    },
}


def _obj(required: Iterable[str] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


STR = {"type": "string"}
#: Request bodies that may be left out (an empty body reads as `{}`).
_OPTIONAL_BODIES = frozenset({"StartRequest", "RetryRequest"})


def _definition_schemas() -> dict[str, Any]:
    """workflow.schema.json as components: `WorkflowDefinition` and one component per `$defs` entry."""
    text = resources.files("schemas").joinpath("workflow.schema.json").read_text("utf-8")
    text = re.sub(r'"#/\$defs/([A-Za-z0-9_]+)"', rf'"#/components/schemas/{_DEFINITION}.\1"', text)
    schema: dict[str, Any] = json.loads(text)
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)  # an $id would make the component refs resolve against it
    return {_DEFINITION: schema, **{f"{_DEFINITION}.{name}": value for name, value in defs.items()}}


class _Schemas(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "title": "Execution Id" beside every property says nothing its name does not


def _answer_schemas(routes: Iterable[Route]) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """The answer models of `routes`: each one's reference, and the components they need."""
    models = {model for route in routes for model in route.responses.values() if model is not None}
    refs, schema = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=_REF,
        schema_generator=_Schemas,
    )
    return {model: refs[(model, "serialization")] for model in models}, schema.get("$defs", {})


def _request_schemas() -> dict[str, Any]:
    return {
        "StartRequest": {
            **_obj((), input={"type": ["object", "null"], "description": "Checked against the `inputs` schema."}),
            "additionalProperties": False,
        },
        "RetryRequest": RetryRequest.model_json_schema(schema_generator=_Schemas),
        "BulkRequest": BulkRequest.model_json_schema(schema_generator=_Schemas),
        "DlqReplayRequest": DlqReplayRequest.model_json_schema(schema_generator=_Schemas),
        "ApprovalRequest": ApprovalRequest.model_json_schema(schema_generator=_Schemas),
        "ExplainRequest": {
            "type": "object",
            "description": "Either a CloudEvent, or a webhook body with the name of its configured source.",
            "oneOf": [
                _obj(["event"], event={"type": "object", "description": "A CloudEvent as JSON (id optional)."}),
                _obj(["source", "body"], source=STR, body={"description": "What /hooks/{source} would receive."}),
            ],
        },
    }


def _operation(route: Route, refs: Mapping[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": STR} for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {"name": p.name, "in": p.where, "required": False, "description": p.description, "schema": dict(p.schema)}
        for p in route.params
    ]
    responses: dict[str, Any] = {}
    for status, model in sorted(route.responses.items()):
        answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[model]}}
        responses[str(status)] = answer
    errors = {*route.errors, *((401, 403) if route.scope else ())}
    for status in sorted(errors):
        problem = {"application/problem+json": {"schema": _ref("Problem")}}
        responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": problem}
    operation: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.path.split("/")[1].removesuffix(".json")],
        "parameters": parameters,
        "responses": responses,
        "security": [{"bearer": []}] if route.scope else [],
        "x-hookline-scope": route.scope,
    }
    if route.scope:
        operation["description"] = f"Needs a bearer token with the `{route.scope}` scope."
    if route.body:
        # A start may have no body at all (input {}); every other body is required.
        required = route.body not in _OPTIONAL_BODIES
        operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": _ref(route.body)}}}
    return operation


def build_spec(routes: Iterable[Route]) -> dict[str, Any]:
    routes = tuple(routes)
    refs, answers = _answer_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.url, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline API",
            "version": "1",
            "description": "Workflow definitions, manual starts, executions and agents. Errors are RFC 9457 "
            "problem details; a token sees only its team's definitions and executions (others are 404).",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": _PROBLEM, **_definition_schemas(), **_request_schemas(), **answers},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A configured api.tokens entry."}
            },
        },
    }


async def serve_openapi(request: web.Request, principal: Principal) -> web.Response:
    return web.Response(body=request.app[SPEC], content_type="application/json")


def encode_spec(routes: Iterable[Route]) -> bytes:
    return orjson.dumps(build_spec(routes))

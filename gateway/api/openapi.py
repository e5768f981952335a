"""The OpenAPI 3.1 document of the API, built from the route table (so it cannot drift from the
routes) and served unauthenticated at /api/v1/openapi.json.

The workflow definition schema is `schemas/workflow.schema.json` itself, its `$defs` lifted into
the components; the step state schema is the pydantic model's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.routing import Route
from schemas.run import StepState
from worker.pools import PoolStatus

__all__ = ["SPEC", "build_spec", "encode_spec", "serve_openapi"]

SPEC = web.AppKey("openapi", bytes)
_DEFINITION = "WorkflowDefinition"

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
            "items": {
                "type": "object",
                "required": ["location", "message"],
                "properties": {"location": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: Iterable[str] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


STR, INT, BOOL, TIME = (
    {"type": "string"},
    {"type": "integer"},
    {"type": "boolean"},
    {"type": "string", "format": "date-time"},
)
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
LINKS = {"type": "object", "additionalProperties": {"type": "string"}}


def _definition_schemas() -> dict[str, Any]:
    """workflow.schema.json as components: `WorkflowDefinition` and one component per `$defs` entry."""
    text = resources.files("schemas").joinpath("workflow.schema.json").read_text("utf-8")
    text = re.sub(r'"#/\$defs/([A-Za-z0-9_]+)"', rf'"#/components/schemas/{_DEFINITION}.\1"', text)
    schema: dict[str, Any] = json.loads(text)
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)  # an $id would make the component refs resolve against it
    return {_DEFINITION: schema, **{f"{_DEFINITION}.{name}": value for name, value in defs.items()}}


def _schemas() -> dict[str, Any]:
    summary = _obj(
        ["id", "name", "team_id", "version"],
        id=STR,
        name=STR,
        description=NULLABLE_STR,
        team_id=STR,
        version=INT,
        created_at=NULLABLE_TIME,
        triggers={"type": "array", "items": {"type": "object"}},
        links=LINKS,
    )
    workflow = {
        "allOf": [_ref("WorkflowSummary")],
        **_obj(
            ["definition", "versions", "digest"],
            digest=STR,
            versions={"type": "array", "items": INT},
            definition=_ref(_DEFINITION),
            schedules={
                "type": "array",
                "description": "Each cron trigger's state as the ticker last recorded it.",
                "items": _obj(
                    ["trigger", "cron", "timezone", "last_tick", "failing"],
                    trigger=INT,
                    cron=STR,
                    timezone=STR,
                    last_tick=NULLABLE_TIME,
                    failing={
                        "oneOf": [
                            {"type": "null"},
                            _obj(["count", "error", "retry_at"], count=INT, error=STR, retry_at=STR),
                        ]
                    },
                ),
            },
        ),
    }
    error = _obj(["location", "message"], location=STR, message=STR)
    sa = {"definition_id": NULLABLE_STR, "team_id": STR, "event_id": NULLABLE_STR, "source": NULLABLE_STR}
    status = {"enum": ["running", "succeeded", "failed", "cancelled", "terminated", "timed_out", "continued_as_new"]}
    execution_item = _obj(
        ["execution_id", "run_id", "status"],
        execution_id=STR,
        run_id=STR,
        status=status,
        started_at=NULLABLE_TIME,
        closed_at=NULLABLE_TIME,
        links=LINKS,
        **sa,
    )
    execution = {
        "allOf": [_ref("ExecutionSummary")],
        **_obj(
            ["steps", "state_source"],
            trigger={"enum": ["manual", "event"]},
            definition_version={"type": ["integer", "null"]},
            error=NULLABLE_STR,
            steps={"type": "object", "additionalProperties": _ref("StepState")},
            state_source={"enum": ["query", "result", "history"]},
            state_note=NULLABLE_STR,
            temporal_ui_url=NULLABLE_STR,
        ),
    }
    event = _obj(
        ["id", "time", "type"],
        id=INT,
        time=TIME,
        type=STR,
        step=NULLABLE_STR,
        compensation=BOOL,
        attempt={"type": ["integer", "null"]},
        error=STR,
        signal=STR,
    )
    agent = _obj(
        ["name", "runner", "pool"],
        name=STR,
        runner=STR,
        pool=STR,
        command={"type": "array", "items": STR},
        description=NULLABLE_STR,
        timeout_s={"type": "number"},
        teams={
            "type": ["array", "null"],
            "items": STR,
            "description": "Operator tokens only: the teams it is limited to (null: every team).",
        },
    )
    page = {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."}
    return {
        "Problem": _PROBLEM,
        **_definition_schemas(),
        "WorkflowSummary": summary,
        "Workflow": workflow,
        "WorkflowList": _obj(["items"], items={"type": "array", "items": _ref("WorkflowSummary")}, next_cursor=page),
        "ValidationResult": _obj(
            ["valid", "errors"], valid=BOOL, id=NULLABLE_STR, errors={"type": "array", "items": error}
        ),
        "Deleted": _obj(["id", "deleted", "version"], id=STR, deleted=BOOL, version=INT),
        "StartRequest": {
            **_obj((), input={"type": ["object", "null"], "description": "Checked against the `inputs` schema."}),
            "additionalProperties": False,
        },
        "Started": _obj(
            ["execution_id", "definition_id", "definition_version", "started"],
            execution_id=STR,
            run_id=NULLABLE_STR,
            definition_id=STR,
            definition_version=INT,
            started={"type": "boolean", "description": "False when the Idempotency-Key found an execution."},
            links=LINKS,
        ),
        "StepState": StepState.model_json_schema(mode="serialization"),
        "ExecutionSummary": execution_item,
        "Execution": execution,
        "ExecutionList": _obj(["items"], items={"type": "array", "items": _ref("ExecutionSummary")}, next_cursor=page),
        "HistoryEvent": event,
        "History": _obj(
            ["execution_id", "events"],
            execution_id=STR,
            run_id=STR,
            events={"type": "array", "items": _ref("HistoryEvent")},
        ),
        "CancelRequested": _obj(
            ["execution_id", "status"], execution_id=STR, run_id=STR, status={"const": "cancel_requested"}
        ),
        "Agent": agent,
        "AgentList": _obj(["items"], items={"type": "array", "items": _ref("Agent")}),
        "ExplainRequest": {
            "type": "object",
            "description": "Either a CloudEvent, or a webhook body with the name of its configured source.",
            "oneOf": [
                _obj(["event"], event={"type": "object", "description": "A CloudEvent as JSON (id optional)."}),
                _obj(["source", "body"], source=STR, body={"description": "What /hooks/{source} would receive."}),
            ],
        },
        "Explanations": _obj(
            ["events"],
            events={
                "type": "array",
                "items": _obj(
                    ["event", "definitions"],
                    event={"type": "object"},
                    definitions={
                        "type": "array",
                        "items": _obj(
                            ["definition", "version", "matches", "reason"],
                            definition=STR,
                            version=INT,
                            matches=BOOL,
                            reason={**NULLABLE_STR, "description": "The first condition that failed."},
                            workflow_id=NULLABLE_STR,
                            on_resolved=NULLABLE_STR,
                            input={"type": ["object", "null"]},
                        ),
                    },
                ),
            },
        ),
        "RunnerPool": PoolStatus.model_json_schema(mode="serialization"),
        "RunnerList": _obj(["items"], items={"type": "array", "items": _ref("RunnerPool")}),
        "OpenApiDocument": {"type": "object"},
    }


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": STR} for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters += [
        {"name": p.name, "in": p.where, "required": False, "description": p.description, "schema": dict(p.schema)}
        for p in route.params
    ]
    responses: dict[str, Any] = {}
    for status, schema in sorted(route.responses.items()):
        answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": _ref(schema)}}
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
        required = route.body != "StartRequest"
        operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": _ref(route.body)}}}
    return operation


def build_spec(routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.url, {})[route.method.lower()] = _operation(route)
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
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A configured api.tokens entry."}
            },
        },
    }


async def serve_openapi(request: web.Request, principal: Principal) -> web.Response:
    return web.Response(body=request.app[SPEC], content_type="application/json")


def encode_spec(routes: Iterable[Route]) -> bytes:
    return orjson.dumps(build_spec(routes))

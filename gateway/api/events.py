"""`POST /events/explain`: which of the caller's definitions an event would start, why the others
would not, and with which input and workflow id. Starts nothing, publishes nothing.

The body is either `{"event": <CloudEvent as JSON>}` or `{"source": "<configured source>",
"body": <webhook body>}`; a webhook body is parsed by its source exactly as `/hooks/{source}`
would, so one Alertmanager notification explains each of its alerts.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from gateway.api.auth import Principal
from gateway.api.messages import json_response, read_object
from gateway.api.models import DefinitionExplanation, EventExplanation, EventSummary, Explanations
from gateway.api.state import API
from gateway.errors import GatewayError, Unprocessable
from gateway.sources import build_sources
from hookline.matching import Explanation, explain
from hookline.runs import team_of
from schemas.events import Event, new_event_id
from schemas.validation import SchemaError, location

__all__ = ["explain_event"]


def _events(doc: dict[str, Any], sources: dict[str, Any]) -> list[Event]:
    if ("event" in doc) == ("source" in doc):
        raise Unprocessable(
            'send either {"event": <CloudEvent>} or {"source": "<name>", "body": <webhook body>}',
            errors=[SchemaError("", "exactly one of event, source is required")],
        )
    if "event" in doc:
        raw = doc["event"]
        if not isinstance(raw, dict):
            raise Unprocessable(
                "event must be a CloudEvent as a JSON object", errors=[SchemaError("event", "not an object")]
            )
        raw = {"id": new_event_id(), **raw}
        raw.setdefault("dedupekey", raw["id"])
        try:
            return [Event.model_validate(raw)]
        except ValidationError as exc:
            errors = [SchemaError(location(["event", *e["loc"]]), e["msg"]) for e in exc.errors()]
            raise Unprocessable("event is not a valid CloudEvent", errors=errors) from exc
    name = doc["source"]
    if not isinstance(name, str) or name not in sources:
        # Not listing the configured sources: their names are the operator's, not every team's.
        raise Unprocessable(
            f"no source named {str(name)[:100]!r} is configured; ask your operator for the source's name",
            errors=[SchemaError("source", "unknown")],
        )
    try:
        events: list[Event] = sources[name].parse(orjson.dumps(doc.get("body")), "application/json")
    except GatewayError as exc:
        errors = [SchemaError(f"body.{e.location}" if e.location else "body", e.message) for e in exc.errors]
        raise Unprocessable(f"the body is not what source {name!r} accepts: {exc.detail}", errors=errors) from exc
    return events


def _row(e: Explanation) -> DefinitionExplanation:
    return DefinitionExplanation(
        definition=e.definition_id,
        version=e.version,
        matches=e.matches,
        reason=e.reason,
        workflow_id=e.workflow_id,
        on_resolved=e.on_resolved,
        input=e.input,
    )


async def explain_event(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    doc = await read_object(request)
    if state.sources is None:
        state.sources = build_sources(state.settings.gateway.sources)
    events = _events(doc, state.sources)
    visible = [d for d in state.definitions().all() if principal.sees(team_of(d))]
    answers = [
        EventExplanation(
            event=EventSummary(
                id=event.id,
                type=event.type,
                source=event.source,
                subject=event.subject,
                dedupekey=event.dedupekey,
                resolves=event.resolves,
            ),
            definitions=[_row(e) for e in explain(visible, event)],
        )
        for event in events
    ]
    return json_response(Explanations(events=answers))

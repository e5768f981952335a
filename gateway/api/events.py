"""`POST /events/explain`: which of the caller's definitions an event would start, why the others
would not, and with which input and workflow id. Starts nothing, publishes nothing.

The body is either `{"event": <CloudEvent as JSON>}` or `{"source": "<configured source>",
"body": <webhook body>}`; a webhook body is parsed by its source exactly as `/hooks/{source}`
would, so one Alertmanager notification explains each of its alerts.

`cloudevent`, `webhook_events` and `explanations` are also what `hookline explain` runs, so the
command and the API read an event and answer about it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict
from pydantic import ValidationError

from gateway.api.auth import Principal
from gateway.api.messages import json_response, read_object
from gateway.api.models import DefinitionExplanation, EventExplanation, EventSummary, Explanations
from gateway.api.state import API
from gateway.errors import GatewayError, Unprocessable
from gateway.sources import Headers, Source
from hookline.definitions import StoredDefinition
from hookline.matching import Explanation, explain
from hookline.runs import team_of
from schemas.events import Event, new_event_id
from schemas.validation import SchemaError, location

__all__ = ["JSON_BODY", "cloudevent", "explain_event", "explanations", "webhook_events"]

#: The headers of a webhook body given without its request: a JSON document.
JSON_BODY: Headers = CIMultiDict({"Content-Type": "application/json"})


def cloudevent(raw: Mapping[str, Any]) -> Event:
    """A CloudEvent as JSON, given an id (and that id as its dedupe key) where it has none.
    Raises pydantic's `ValidationError` for anything else."""
    doc = {"id": new_event_id(), **raw}
    doc.setdefault("dedupekey", doc["id"])
    return Event.model_validate(doc)


def webhook_events(source: Source, body: bytes) -> list[Event]:
    """The events in a JSON webhook body, parsed by its source as `/hooks/{source}` parses them
    (no credentials checked). Raises a `GatewayError` for what the source refuses."""
    return source.parse(body, JSON_BODY)


def explanations(definitions: Iterable[StoredDefinition], events: Iterable[Event]) -> list[EventExplanation]:
    """For each event, whether each of `definitions` would start and why not."""
    candidates = list(definitions)
    return [
        EventExplanation(
            event=EventSummary.model_validate(event, from_attributes=True),
            definitions=[_row(e) for e in explain(candidates, event)],
        )
        for event in events
    ]


def _events(doc: dict[str, Any], sources: Mapping[str, Source]) -> list[Event]:
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
        try:
            return [cloudevent(raw)]
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
        return webhook_events(sources[name], orjson.dumps(doc.get("body")))
    except GatewayError as exc:
        errors = [SchemaError(f"body.{e.location}" if e.location else "body", e.message) for e in exc.errors]
        raise Unprocessable(f"the body is not what source {name!r} accepts: {exc.detail}", errors=errors) from exc


def _row(e: Explanation) -> DefinitionExplanation:
    return DefinitionExplanation(
        definition=e.definition_id,
        version=e.version,
        matches=e.matches,
        reason=e.reason,
        workflow_id=e.workflow_id,
        on_resolved=e.on_resolved,
        input=e.input,
        flow_control=e.flow_control,
    )


async def explain_event(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    doc = await read_object(request)
    events = _events(doc, state.sources)
    visible = [d for d in state.definitions().all() if principal.sees(team_of(d))]
    return json_response(Explanations(events=explanations(visible, events)))

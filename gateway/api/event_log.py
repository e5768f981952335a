"""`GET /events/{id}` and `GET /events`: did an event arrive, what did it start, and why not.

The answers come from the triggers' decisions (`schemas.decisions`, indexed by
`gateway.api.event_index`). A decision records what each matching definition's run became; why
a definition did *not* match is worked out when asked, by evaluating the definition's version
that was in force when the event was decided (the decision's snapshot), not today's version.

An event is the business of the teams that had a definition listening to its source when it was
decided; an operator sees every event. Another team gets 404, as for an id that does not exist.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.event_index import MAX_LABELS, EventFilter
from gateway.api.executions import execution_links
from gateway.api.messages import decode_cursor, encode_cursor, filter_time, json_response, page_limit
from gateway.api.models import EventDecision, EventHops, EventList, EventListItem, EventRecord
from gateway.api.routing import API_PREFIX
from gateway.api.state import API, ApiState
from gateway.errors import BadRequest, NotFound
from hookline.matching import explain
from schemas.decisions import Decision
from schemas.events import HEADERS_EXTENSION, Event

__all__ = ["get_event", "list_events"]


def _event_links(event_id: str) -> dict[str, str]:
    return {"self": f"{API_PREFIX}/events/{event_id}"}


def _execution_links(execution_id: str | None) -> dict[str, str]:
    return {"execution": execution_links(execution_id)["self"]} if execution_id else {}


def _visible(principal: Principal, decision: Decision) -> bool:
    return principal.operator or principal.team in decision.teams or principal.team in decision.matched_teams()


async def _decisions(state: ApiState, principal: Principal, decision: Decision, event: Event) -> list[EventDecision]:
    """Per definition the caller may see: what the event started, or why it did not match, as
    the version in force then says."""
    rows = [
        EventDecision(
            definition_id=row.definition_id,
            version=row.version,
            team=row.team,
            matched=True,
            reason=row.reason,
            outcome=row.outcome,
            execution_id=row.workflow_id,
            links=_execution_links(row.workflow_id),
        )
        for row in decision.matched
        if principal.sees(row.team)
    ]
    if decision.replay:
        return rows  # a replay evaluated only the definitions it concerned
    recorded = {row.definition_id for row in decision.matched}
    snapshot = await state.events().snapshot(decision.snapshot)
    store = state.definitions()
    for definition_id, version in sorted(snapshot.versions.items() if snapshot else ()):
        stored = store.get_version(definition_id, version)
        if definition_id in recorded or stored is None or not principal.sees(stored.definition.team):
            continue
        if decision.data_omitted is not None:
            reason = f"not evaluated: the event's data ({decision.data_omitted} bytes) was too large to keep"
        else:
            # It matched, yet the triggers recorded nothing for it: say so rather than guess.
            reason = explain([stored], event)[0].reason or "matches now, but the triggers recorded no decision for it"
        rows.append(
            EventDecision(
                definition_id=definition_id,
                version=version,
                team=stored.definition.team,
                matched=False,
                reason=reason,
                outcome=None,
                execution_id=None,
                links={},
            )
        )
    return sorted(rows, key=lambda row: row.definition_id)


def _headers(event: Event) -> dict[str, Any] | None:
    text = event.extensions.get(HEADERS_EXTENSION)
    if text is None:
        return None
    with contextlib.suppress(orjson.JSONDecodeError):
        kept = orjson.loads(text)
        return kept if isinstance(kept, dict) else None
    return None


async def get_event(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    event_id = request.match_info["event_id"]
    index = state.events()
    decision = await index.get(event_id)
    if decision is None or not _visible(principal, decision):
        accepted = state.recent.get(event_id) if decision is None else None
        if accepted is None:
            note = "" if index.caught_up else " (the event index is still being read; retry shortly)"
            raise NotFound(f'no event "{event_id}" that you may see{note}')
        answer = EventRecord(
            id=event_id,
            status="in_flight",
            source=accepted.source,
            type=None,
            subject=None,
            event=None,
            headers=None,
            hops=EventHops(accepted_at=datetime.fromtimestamp(accepted.at, UTC), consumed_at=None, decided_at=None),
            replayed=False,
            decisions=[],
            links=_event_links(event_id),
        )
        return json_response(answer)
    event = decision.event()
    answer = EventRecord(
        id=decision.event_id,
        status="decided",
        source=decision.source,
        type=decision.type,
        subject=decision.subject,
        event=event.model_dump(mode="json"),
        data_omitted=decision.data_omitted,
        headers=_headers(event),
        hops=EventHops(
            accepted_at=decision.accepted_at, consumed_at=decision.consumed_at, decided_at=decision.decided_at
        ),
        replayed=decision.replay,
        decisions=await _decisions(state, principal, decision, event),
        links=_event_links(decision.event_id),
    )
    return json_response(answer)


def _flag(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f'query parameter "{name}" must be true or false, got "{raw[:50]}"')
    return raw == "true"


def _labels(request: web.Request) -> tuple[tuple[str, str], ...]:
    """The `label=key=value` filters (repeatable: all must hold); 400 for one without `=`."""
    pairs = []
    for raw in request.query.getall("label", []):
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise BadRequest(f'query parameter "label" must read key=value (e.g. service=db), got "{raw[:50]}"')
        pairs.append((key, value))
    if len(pairs) > MAX_LABELS:
        raise BadRequest(f'at most {MAX_LABELS} "label" filters, got {len(pairs)}')
    return tuple(pairs)


async def list_events(request: web.Request, principal: Principal) -> web.Response:
    """The decided events the caller may see, newest accepted first, narrowed by the query."""
    state = request.app[API]
    where = EventFilter(
        team=None if principal.operator else principal.team,
        source=request.query.get("source"),
        type=request.query.get("type"),
        subject=request.query.get("subject"),
        since=filter_time(request.query, "since"),
        until=filter_time(request.query, "until"),
        matched=_flag(request, "matched"),
        labels=_labels(request),
    )
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    scope = orjson.dumps([principal.team, where.where()[1]]).decode()
    after = None
    if cursor := request.query.get("cursor"):
        at, event_id = orjson.loads(decode_cursor(cursor, scope))
        after = (float(at), str(event_id))
    found = await state.events().search(where, limit + 1, after)
    items = [
        EventListItem(
            id=d.event_id,
            source=d.source,
            type=d.type,
            subject=d.subject,
            accepted_at=d.accepted_at,
            decided_at=d.decided_at,
            matched=any(principal.sees(row.team) for row in d.matched),
            links=_event_links(d.event_id),
        )
        for _, d in found[:limit]
    ]
    next_cursor = None
    if len(found) > limit:
        at, last = found[limit - 1]
        next_cursor = encode_cursor(orjson.dumps([at, last.event_id]), scope)
    return json_response(EventList(items=items, next_cursor=next_cursor))

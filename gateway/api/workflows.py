"""Workflow definitions: create, list, read (any version), replace, delete, validate.

A definition belongs to its `team_id` (none: `hookline.runs.DEFAULT_TEAM`), and its id is scoped
by that team (`schemas.workflow.qualified_id`): `deploy-application` in the default team,
`team-uuid~deploy-application` in team `team-uuid`. In a URL, a team token may leave its own team
out (`/workflows/deploy-application` is its own); an operator token's unqualified ids are the
default team's. A token sees its own team's definitions only; another team's are answered 404
from the id alone, whether they exist or not.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.messages import etag, expected_version, json_response, page_limit, query_int, read_object
from gateway.api.models import Deleted, ScheduleState, ValidationResult, Workflow, WorkflowList, WorkflowSummary
from gateway.api.routing import API_PREFIX
from gateway.api.state import API, ApiState
from gateway.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable
from hookline.definitions import DefinitionExists, StaleVersion, StoredDefinition, WriteContended
from hookline.kafka import TopicView
from hookline.runs import DEFAULT_TEAM, team_of
from hookline.topics import topic_errors
from schemas.ticks import schedule_id
from schemas.validation import SchemaError
from schemas.workflow import (
    TEAM_SEPARATOR,
    DefinitionError,
    WorkflowDefinition,
    parse_definition,
    qualified_id,
    split_id,
)

__all__ = [
    "create_workflow",
    "delete_workflow",
    "get_workflow",
    "list_workflows",
    "replace_workflow",
    "resolve_id",
    "validate_workflow",
    "visible_definition",
]


T = TypeVar("T")

_TRIGGER_SUMMARY = {"type", "source", "topic", "cron"}


def _links(definition_id: str) -> dict[str, str]:
    base = f"{API_PREFIX}/workflows/{definition_id}"
    return {"self": base, "start": f"{base}/start", "executions": f"{base}/executions"}


def summary(stored: StoredDefinition) -> WorkflowSummary:
    d = stored.definition
    return WorkflowSummary(
        id=stored.id,
        name=d.name,
        description=d.description,
        team_id=team_of(stored),
        version=stored.version,
        created_at=stored.created_at or None,
        author=stored.author or None,
        triggers=[t.model_dump(mode="json", include=_TRIGGER_SUMMARY, exclude_none=True) for t in d.triggers],
        links=_links(stored.id),
    )


def detail(stored: StoredDefinition, versions: list[int], schedules: TopicView | None = None) -> Workflow:
    return Workflow(
        **dict(summary(stored)),
        digest=stored.digest,
        versions=versions,
        definition=stored.document,
        schedules=schedule_states(stored, schedules),
    )


def schedule_states(stored: StoredDefinition, view: TopicView | None) -> list[ScheduleState]:
    """Each cron trigger with what the ticker last recorded of it: the last slot it ticked and,
    while its ticks fail, how often, why, and when it tries again (None while all is well)."""
    states = []
    for index, trigger in enumerate(stored.definition.triggers):
        if trigger.type != "schedule" or not trigger.cron:
            continue
        raw = view.get(schedule_id(stored.id, index)) if view is not None else None
        recorded = orjson.loads(raw) if raw else {}
        states.append(
            ScheduleState(
                trigger=index,
                cron=trigger.cron,
                timezone=trigger.timezone,
                last_tick=recorded.get("last"),
                failing=recorded.get("failing"),
            )
        )
    return states


def resolve_id(principal: Principal, named: str) -> str:
    """The id of the definition a URL names (`<team>~<id>`, or `<id>` of the caller's team, of
    the default team for an operator); 404 if it is another team's, whether it exists or not."""
    team, local_id = split_id(named)
    if TEAM_SEPARATOR not in named and not principal.operator:
        team = principal.team
    if not principal.sees(team):
        raise NotFound(f'no workflow definition "{named}"')
    return qualified_id(team, local_id)


def known_definition(state: ApiState, principal: Principal, named: str) -> StoredDefinition:
    """The current version, or the last one of a deleted definition (its runs and lanes are still
    there), if the caller's team may see it; 404 otherwise."""
    definition_id = resolve_id(principal, named)
    store = state.definitions()
    last = store.deleted(definition_id)
    stored = store.get(definition_id) or (store.get_version(definition_id, last) if last is not None else None)
    if stored is None or not principal.sees(team_of(stored)):
        raise NotFound(f'no workflow definition "{definition_id}"')
    return stored


def visible_definition(state: ApiState, principal: Principal, named: str) -> StoredDefinition:
    """The current version if the caller's team may see it; 404 otherwise (also when deleted)."""
    definition_id = resolve_id(principal, named)
    store = state.definitions()
    stored = store.get(definition_id)
    if stored is not None and principal.sees(team_of(stored)):
        return stored
    last = store.deleted(definition_id)
    gone = store.get_version(definition_id, last) if last is not None else None
    if gone is not None and principal.sees(team_of(gone)):
        raise NotFound(
            f'workflow definition "{definition_id}" was deleted; its versions stay readable with ?version=N'
            f" (the last was {last})"
        )
    raise NotFound(f'no workflow definition "{definition_id}"')


def _owned(doc: dict[str, Any], principal: Principal, fallback: str | None) -> dict[str, Any]:
    """`doc` with the team it is written for: its own `team_id`, which the caller must be allowed
    to write (403), or else `fallback` (the team of the id in the URL), or else the caller's team."""
    if "team_id" in doc:
        team = doc["team_id"]
        if isinstance(team, str) and not principal.sees(team):
            raise Forbidden(f'this token acts for team "{principal.team}"; it cannot write team "{team}"')
        return doc  # a team_id of the wrong type is the schema's to report
    team = fallback if fallback is not None else (None if principal.operator else principal.team)
    return doc if team is None or team == DEFAULT_TEAM else {**doc, "team_id": team}


def _parse(state: ApiState, doc: dict[str, Any]) -> WorkflowDefinition:
    def checks(definition: WorkflowDefinition) -> list[SchemaError]:
        return topic_errors(definition, state.settings.kafka) + state.check_agents(definition)

    try:
        return parse_definition(doc, checks=checks)
    except DefinitionError as exc:
        raise Unprocessable("the workflow definition is invalid", errors=exc.errors) from exc


async def create_workflow(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    raw = await read_object(request)
    # Stored with its full id, so a PUT of the same document is recognised as unchanged; its keys
    # in the order a PUT stores them (id, then team_id), so a diff of two versions shows no move.
    doc = _owned({**raw, "id": _parse(state, _owned(raw, principal, None)).id}, principal, None)
    store = state.definitions()
    try:
        stored = await state.write(store.create(doc, author=principal.author))
    except (DefinitionExists, WriteContended) as exc:
        raise Conflict(str(exc)) from exc
    except DefinitionError as exc:
        raise Unprocessable("the workflow definition is invalid", errors=exc.errors) from exc
    body = detail(stored, store.versions(stored.id), state.schedules)
    return json_response(body, 201, headers={"Location": body.links["self"], "ETag": etag(stored.version)})


async def list_workflows(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    team = request.query.get("team")
    if team is not None and not principal.sees(team):
        raise Forbidden(f'this token acts for team "{principal.team}"; it cannot list team "{team}"')
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    after = request.query.get("cursor", "")
    items = [
        s
        for s in state.definitions().all(refused=True)  # listed, so that its team can fix it
        if principal.sees(team_of(s)) and (team is None or team_of(s) == team) and s.id > after
    ]
    page = items[:limit]
    next_cursor = page[-1].id if len(items) > limit else None
    return json_response(WorkflowList(items=[summary(s) for s in page], next_cursor=next_cursor))


async def get_workflow(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    store = state.definitions()
    definition_id = resolve_id(principal, request.match_info["workflow_id"])
    version = query_int(request, "version", minimum=1)
    if version is None:
        stored = visible_definition(state, principal, definition_id)
    else:
        found = store.get_version(definition_id, version)
        if found is None or not principal.sees(team_of(found)):
            raise NotFound(f'no version {version} of workflow definition "{definition_id}"')
        stored = found
    return json_response(
        detail(stored, store.versions(definition_id), state.schedules), headers={"ETag": etag(stored.version)}
    )


def _expected(request: web.Request, current: StoredDefinition | None) -> int | None:
    """The version the request's precondition expects (None: unconditional); 412 at once when
    this view already shows it failed. The store checks it again as it writes."""
    expected = expected_version(request)
    if expected == "*":
        if current is None:
            raise PreconditionFailed("If-Match: * needs a current version, and there is none")
        return None
    if expected is not None and expected != (current.version if current else 0):
        raise PreconditionFailed(
            str(StaleVersion(request.match_info["workflow_id"], expected, current.version if current else 0))
        )
    return expected


async def _written(operation: Awaitable[T]) -> T:
    """A store write's conflicts as answers: a failed precondition 412, contention 409."""
    try:
        return await operation
    except StaleVersion as exc:
        raise PreconditionFailed(str(exc)) from exc
    except WriteContended as exc:
        raise Conflict(str(exc)) from exc


async def replace_workflow(request: web.Request, principal: Principal) -> web.Response:
    """Create or replace `{workflow_id}` with the body; an unchanged body keeps its version."""
    state = request.app[API]
    definition_id = resolve_id(principal, request.match_info["workflow_id"])
    team, local_id = split_id(definition_id)
    doc = await read_object(request)
    if "id" in doc and doc["id"] != local_id and (not isinstance(doc["id"], str) or _full(doc["id"]) != definition_id):
        error = SchemaError("id", f'"{str(doc["id"])[:200]}" differs from the id in the URL, "{definition_id}"')
        raise Unprocessable("the body's id must match the URL", errors=[error])
    store = state.definitions()
    existing = store.get(definition_id)
    doc = _owned({**doc, "id": definition_id}, principal, team)
    _parse(state, doc)
    expected = _expected(request, existing)
    try:
        stored = await state.write(
            _written(store.put(doc, definition_id=definition_id, expected=expected, author=principal.author))
        )
    except DefinitionError as exc:
        raise Unprocessable("the workflow definition is invalid", errors=exc.errors) from exc
    status = 201 if existing is None else 200
    return json_response(
        detail(stored, store.versions(definition_id), state.schedules), status, headers={"ETag": etag(stored.version)}
    )


async def delete_workflow(request: web.Request, principal: Principal) -> web.Response:
    """Delete the definition; its versions stay readable and its running executions run on."""
    state = request.app[API]
    stored = visible_definition(state, principal, request.match_info["workflow_id"])
    expected = _expected(request, stored)
    deleted = await state.write(
        _written(state.definitions().delete(stored.id, expected=expected, author=principal.author))
    )
    if deleted is None:  # deleted by someone else in the meantime
        raise NotFound(f'no workflow definition "{stored.id}"')
    return json_response(Deleted(id=stored.id, deleted=True, version=deleted.version))


def _full(named: str) -> str:
    return qualified_id(*split_id(named))


async def validate_workflow(request: web.Request, principal: Principal) -> web.Response:
    """What POST /workflows would say about the body, without saving it."""
    state = request.app[API]
    doc = await read_object(request)
    errors: list[SchemaError] = []
    try:
        doc = _owned(doc, principal, None)
    except Forbidden as exc:
        errors.append(SchemaError("team_id", exc.detail))
    definition_id = None
    try:
        definition_id = _parse(state, doc).id
    except Unprocessable as exc:
        errors.extend(exc.errors)
    return json_response(ValidationResult(valid=not errors, id=definition_id, errors=errors))

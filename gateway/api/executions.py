"""Executions: manual starts, listing a definition's runs, one run's state and history, cancel.

An execution id is the Temporal workflow id: `<definition>:manual:<uuid>` for a manual start,
`<definition>:key:<hash>` with an Idempotency-Key, `<definition>:event:<source>/<dedupe key>`
for triggered runs (each kind its own id space: `hookline.runs`). Its team is the `HooklineTeam`
search attribute; other teams get 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from gateway.api.auth import Principal
from gateway.api.history import read_history
from gateway.api.inputs import start_input
from gateway.api.messages import (
    check_filters,
    decode_cursor,
    encode_cursor,
    expected_version,
    filter_time,
    json_response,
    page_limit,
    read_object,
)
from gateway.api.models import (
    CancelRequested,
    Execution,
    ExecutionList,
    ExecutionStatus,
    ExecutionSummary,
    History,
    HistoryEvent,
    Started,
)
from gateway.api.routing import API_PREFIX
from gateway.api.state import API, ApiState
from gateway.api.workflows import known_definition, visible_definition
from gateway.errors import BadRequest, Conflict, NotFound, PreconditionFailed, Unprocessable
from hookline.runs import (
    DEFAULT_TEAM,
    NotStartable,
    build_request,
    keyed_run_id,
    manual_run_id,
    start_run,
    trigger_kind,
)
from hookline.temporal import SA_DEFINITION, SA_EVENT, SA_RETRY_OF, SA_SOURCE, SA_TEAM, SA_TRIGGER, query_literal
from schemas.run import STATE_QUERY, WORKFLOW_NAME, RunState, StepState
from schemas.validation import SchemaError

__all__ = [
    "FILTERABLE",
    "FILTERS",
    "STATUS",
    "cancel_execution",
    "described_execution",
    "execution_history",
    "execution_links",
    "get_execution",
    "list_all_executions",
    "list_executions",
    "sees_execution",
    "start_workflow",
    "summary_of",
    "visibility_query",
    "visible_execution",
]

S = WorkflowExecutionStatus
E = ExecutionStatus
#: Temporal's status of an execution → the API's (any other: unknown).
STATUS = {
    S.RUNNING: E.RUNNING,
    S.COMPLETED: E.SUCCEEDED,
    S.FAILED: E.FAILED,
    S.CANCELED: E.CANCELLED,
    S.TERMINATED: E.TERMINATED,
    S.TIMED_OUT: E.TIMED_OUT,
    S.CONTINUED_AS_NEW: E.CONTINUED_AS_NEW,
}
#: The statuses the executions list filters by → Temporal's ExecutionStatus in a visibility query.
FILTERABLE = {
    E.RUNNING: "Running",
    E.SUCCEEDED: "Completed",
    E.FAILED: "Failed",
    E.CANCELLED: "Canceled",
    E.TERMINATED: "Terminated",
    E.TIMED_OUT: "TimedOut",
}
_MAX_KEY_CHARS = 255


def execution_links(execution_id: str) -> dict[str, str]:
    base = f"{API_PREFIX}/executions/{quote(execution_id, safe=':')}"
    return {"self": base, "history": f"{base}/history", "cancel": f"{base}/cancel"}


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= _MAX_KEY_CHARS:
        raise BadRequest(f"Idempotency-Key must be 1 to {_MAX_KEY_CHARS} characters")
    return key


async def start_workflow(request: web.Request, principal: Principal) -> web.Response:
    """Start a run of the definition's current version with the body's input (202)."""
    state = request.app[API]
    key = _idempotency_key(request)
    body = await read_object(request, empty_ok=True)
    stored = visible_definition(state, principal, request.match_info["workflow_id"])
    expected = expected_version(request) if "If-Match" in request.headers else None
    if isinstance(expected, int) and expected != stored.version:
        raise PreconditionFailed(
            f'If-Match names version {expected} of "{stored.id}", but version {stored.version} is current; '
            "read it again and retry"
        )
    run_input = start_input(body)
    try:
        run = build_request(stored, state.agents, state.settings.temporal, input=run_input)
    except NotStartable as exc:  # an agent it names is gone, or the input breaks its `inputs` schema
        raise Unprocessable(str(exc), errors=exc.errors or [SchemaError("definition", str(exc))]) from exc
    execution_id = manual_run_id(stored.id) if key is None else keyed_run_id(stored.id, principal.team, key)
    client = state.temporal()
    async with state.temporal_call():
        try:
            handle, started = await start_run(client, state.settings.temporal, run, execution_id)
            run_id = handle.result_run_id or handle.first_execution_run_id
        except WorkflowAlreadyStartedError as exc:  # the same key, and that run has finished
            started, run_id = False, exc.run_id
    answer = Started(
        execution_id=execution_id,
        run_id=run_id,
        definition_id=stored.id,
        definition_version=stored.version,
        started=started,
        links=execution_links(execution_id),
    )
    return json_response(answer, 202, headers={"Location": answer.links["self"]})


def summary_of(execution: WorkflowExecution) -> ExecutionSummary:
    status = execution.status
    attributes = execution.typed_search_attributes
    return ExecutionSummary(
        execution_id=execution.id,
        run_id=execution.run_id,
        status=STATUS.get(status, E.UNKNOWN) if status else E.UNKNOWN,
        started_at=execution.start_time,
        closed_at=execution.close_time,
        definition_id=attributes.get(SA_DEFINITION),
        team_id=attributes.get(SA_TEAM) or DEFAULT_TEAM,
        event_id=attributes.get(SA_EVENT),
        source=attributes.get(SA_SOURCE),
        trigger=attributes.get(SA_TRIGGER) or trigger_kind(execution.id, event=attributes.get(SA_EVENT) is not None),
        retry_of=attributes.get(SA_RETRY_OF),
        links=execution_links(execution.id),
    )


async def list_executions(request: web.Request, principal: Principal) -> web.Response:
    """The definition's runs (also those triggered by events), newest first."""
    state = request.app[API]
    definition_id = known_definition(state, principal, request.match_info["workflow_id"]).id
    filters = {"definition": definition_id, **{k: v for k, v in request.query.items() if k == "status"}}
    return await _page(request, visibility_query(principal, filters))


#: The filters of `GET /executions` and the bulk operations → their search attribute.
FILTERS = {
    "definition": SA_DEFINITION.name,
    "team": SA_TEAM.name,
    "source": SA_SOURCE.name,
    "event": SA_EVENT.name,
    "trigger": SA_TRIGGER.name,
}
_TRIGGERS = ("event", "schedule", "manual", "retry")


def visibility_query(principal: Principal, filters: Mapping[str, str]) -> str:
    """Temporal's visibility query for `filters` (the query parameters of `GET /executions`),
    narrowed to the caller's team; 400 for an unknown filter or value, 403 for another team."""
    check_filters(filters, [*FILTERS, "status", "since", "until"], principal, "executions")
    if (trigger := filters.get("trigger")) is not None and trigger not in _TRIGGERS:
        raise BadRequest(f'"trigger" must be one of {", ".join(_TRIGGERS)}')
    clauses = [f"WorkflowType = {query_literal(WORKFLOW_NAME)}"]
    if not principal.operator:
        clauses.append(f"{SA_TEAM.name} = {query_literal(principal.team)}")
    for name, attribute in FILTERS.items():
        if (value := filters.get(name)) is not None:
            clauses.append(f"{attribute} = {query_literal(value)}")
    if (status := filters.get("status")) is not None:
        if status not in FILTERABLE:
            raise BadRequest(f'"status" must be one of {", ".join(FILTERABLE)}')
        clauses.append(f"ExecutionStatus = {query_literal(FILTERABLE[ExecutionStatus(status)])}")
    if (since := filter_time(filters, "since")) is not None:
        clauses.append(f"StartTime >= {query_literal(since.isoformat())}")
    if (until := filter_time(filters, "until")) is not None:
        clauses.append(f"StartTime < {query_literal(until.isoformat())}")
    return " AND ".join(clauses)


async def list_all_executions(request: web.Request, principal: Principal) -> web.Response:
    """Executions of every definition the caller may see, newest first, narrowed by the query."""
    return await _page(request, visibility_query(principal, request.query))


async def _page(request: web.Request, query: str) -> web.Response:
    """One page of the executions `query` selects, newest first."""
    state = request.app[API]
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    cursor = request.query.get("cursor")
    token = decode_cursor(cursor, query) if cursor else None
    client = state.temporal()
    async with state.temporal_call():
        pages = client.list_workflows(query, page_size=limit, next_page_token=token)
        await pages.fetch_next_page()
    items = [summary_of(w) for w in pages.current_page or []]
    next_cursor = encode_cursor(pages.next_page_token, query) if pages.next_page_token else None
    return json_response(ExecutionList(items=items, next_cursor=next_cursor))


async def described_execution(
    state: ApiState, execution_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The run `execution_id` (a handle on its current run) and Temporal's description of it,
    whoever asks: 404 when there is none, or it is not a run (a lane, a mailbox)."""
    client = state.temporal()
    async with state.temporal_call():
        try:
            description = await client.get_workflow_handle(execution_id).describe()
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise
            raise NotFound(f'no execution "{execution_id}"') from None
    if description.workflow_type != WORKFLOW_NAME:
        raise NotFound(f'no execution "{execution_id}"')
    return client.get_workflow_handle(execution_id, run_id=description.run_id), description


def sees_execution(principal: Principal, description: WorkflowExecution) -> bool:
    """Whether the run is of the caller's team (an operator's token sees every team's)."""
    return principal.sees(description.typed_search_attributes.get(SA_TEAM) or DEFAULT_TEAM)


async def visible_execution(
    state: ApiState, principal: Principal, execution_id: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The run `execution_id` if it is of the caller's team; 404 otherwise, as when there is
    none (the answer does not tell the two apart)."""
    handle, description = await described_execution(state, execution_id)
    if not sees_execution(principal, description):
        raise NotFound(f'no execution "{execution_id}"')
    return handle, description


def _ui_url(state: ApiState, description: WorkflowExecutionDescription) -> str | None:
    settings = state.settings.temporal
    if not settings.ui_url:
        return None
    workflow = quote(description.id, safe="")
    return (
        f"{settings.ui_url.rstrip('/')}/namespaces/{quote(settings.namespace, safe='')}"
        f"/workflows/{workflow}/{description.run_id}/history"
    )


async def queried_state(state: ApiState, handle: WorkflowHandle[Any, Any]) -> RunState | None:
    """The interpreter's own account, if a worker answers in time."""
    try:
        result: RunState | None = await handle.query(
            STATE_QUERY, result_type=RunState, rpc_timeout=timedelta(seconds=state.options.query_timeout_s)
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, TimeoutError):
        return None
    return result


def _state_view(
    steps: dict[str, StepState], version: int | None, error: str | None, source: str, note: str | None = None
) -> dict[str, Any]:
    """The fields of an `Execution` that tell its run's state, and where they were read."""
    return {"definition_version": version, "error": error, "steps": steps, "state_source": source, "state_note": note}


async def _run_state(state: ApiState, handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """The run's step states: from the interpreter's `state` query, or else the completed run's
    result, or else as far as the history tells (no worker polls, or the query timed out)."""
    queried = await queried_state(state, handle)
    if queried is not None:
        return _state_view(queried.steps, queried.definition_version, queried.error, "query")
    history = await read_history(state.temporal(), handle)
    if (result := history.result) is not None:
        return _state_view(result.steps, result.definition_version, result.error, "result")
    version = history.request.definition_version if history.request else None
    note = "no worker answered the state query; the step states are read from the history"
    return _state_view(history.step_states(), version, history.error, "history", note)


async def get_execution(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    handle, description = await visible_execution(state, principal, request.match_info["execution_id"])
    async with state.temporal_call():
        run_state = await _run_state(state, handle)
    summary = summary_of(description)
    execution = Execution(
        **dict(summary),
        **run_state,
        temporal_ui_url=_ui_url(state, description),
    )
    return json_response(execution)


async def execution_history(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    handle, description = await visible_execution(state, principal, request.match_info["execution_id"])
    async with state.temporal_call():
        history = await read_history(state.temporal(), handle)
    events = [HistoryEvent.model_validate(event) for event in history.events]
    answer = History(execution_id=description.id, run_id=description.run_id, events=events)
    return json_response(answer, exclude_unset=True)  # run events have no step, attempt, ...


async def cancel_execution(request: web.Request, principal: Principal) -> web.Response:
    """Ask the run to cancel (202): its steps stop, completed steps are compensated. 409 once closed."""
    state = request.app[API]
    handle, description = await visible_execution(state, principal, request.match_info["execution_id"])
    if description.status != S.RUNNING:
        status = STATUS.get(description.status, "closed") if description.status else "closed"
        raise Conflict(f'execution "{description.id}" is already {status}')
    async with state.temporal_call():
        try:
            await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # it closed in the meantime
                raise
            raise Conflict(f'execution "{description.id}" has already closed') from exc
    return json_response(
        CancelRequested(execution_id=description.id, run_id=description.run_id, status="cancel_requested"), 202
    )

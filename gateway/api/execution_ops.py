"""Executions across definitions: list them by any filter, retry one, retry or cancel many.

A retry is a new run (`<definition>:retry:<hex>`) with the input and the event of the run it
repeats, of the definition version that run ran (`same`, the default) or of the current one
(`latest`); its `HooklineRetryOf` search attribute names the run it repeats. Only a run that
ended without succeeding (failed, cancelled, terminated, timed out) can be retried.

Bulk operations take the filters of `GET /executions`; a dry run answers how many executions they
select, and a real one acts on at most `api.bulk_limit` of them, newest first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from gateway.api.auth import Principal
from gateway.api.executions import STATUS, execution_links, visibility_query, visible_execution
from gateway.api.history import read_history
from gateway.api.messages import json_response, read_model
from gateway.api.models import BulkFailure, BulkRequest, BulkResult, RetryRequest, Started
from gateway.api.state import API, ApiState
from gateway.errors import BadRequest, Conflict, Unprocessable
from hookline.runs import NotStartable, build_request, retry_run_id, start_run
from schemas.validation import SchemaError

__all__ = ["bulk_cancel", "bulk_retry", "retry_execution"]

S = WorkflowExecutionStatus
#: Temporal statuses a retry may repeat.
RETRYABLE = {S.FAILED, S.CANCELED, S.TERMINATED, S.TIMED_OUT}
_RETRYABLE_QUERY = "ExecutionStatus IN ('Failed', 'Canceled', 'Terminated', 'TimedOut')"
#: Retries and cancels of one bulk request run this many at a time.
_BULK_PARALLEL = 8


async def _retry(state: ApiState, principal: Principal, execution_id: str, version: str) -> Started:
    """Start the retry of one visible, retryable execution."""
    handle, description = await visible_execution(state, principal, execution_id)
    if description.status not in RETRYABLE:
        status = STATUS.get(description.status, "unknown") if description.status else "unknown"
        raise Conflict(f'execution "{description.id}" is {status}; only a failed or cancelled one can be retried')
    async with state.temporal_call():
        history = await read_history(state.temporal(), handle)
    original = history.request
    if original is None:
        raise Conflict(f'execution "{description.id}" has no readable start request to repeat')
    store = state.definitions()
    definition_id = original.definition_id
    stored = (
        store.get(definition_id)
        if version == "latest"
        else store.get_version(definition_id, original.definition_version)
    )
    if stored is None:
        which = "a current version" if version == "latest" else f"version {original.definition_version}"
        raise Conflict(f'definition "{definition_id}" has no {which} any more')
    try:
        run = build_request(stored, state.agents, state.settings.temporal, input=original.input, event=original.event)
    except NotStartable as exc:
        raise Unprocessable(str(exc), errors=exc.errors or [SchemaError("definition", str(exc))]) from exc
    new_id = retry_run_id(definition_id)
    async with state.temporal_call():
        try:
            new, started = await start_run(
                state.temporal(), state.settings.temporal, run, new_id, retry_of=description.id
            )
        except WorkflowAlreadyStartedError as exc:  # a random id: only a second start of this very request
            raise Conflict(f"the retry {new_id} exists already") from exc
    return Started(
        execution_id=new_id,
        run_id=new.result_run_id or new.first_execution_run_id,
        definition_id=stored.id,
        definition_version=stored.version,
        started=started,
        retry_of=description.id,
        links=execution_links(new_id),
    )


async def retry_execution(request: web.Request, principal: Principal) -> web.Response:
    """Start a new run repeating a failed or cancelled one (202); 409 for one that did not end so."""
    state = request.app[API]
    body = await read_model(request, RetryRequest, empty_ok=True)
    answer = await _retry(state, principal, request.match_info["execution_id"], body.version)
    return json_response(answer, 202, headers={"Location": answer.links["self"]})


async def _bulk(
    request: web.Request, principal: Principal, narrowed: str, act: str
) -> tuple[ApiState, BulkRequest, list[str], int]:
    """The request, and the executions its filter selects (at most `api.bulk_limit`)."""
    state = request.app[API]
    body = await read_model(request, BulkRequest)
    if "status" in body.filter:
        raise BadRequest(f'a bulk {act} chooses the status itself ({narrowed}); leave "status" out')
    query = f"{visibility_query(principal, body.filter)} AND {narrowed}"
    client = state.temporal()
    async with state.temporal_call():
        matched = (await client.count_workflows(query)).count
        ids = [] if body.dry_run else [w.id async for w in client.list_workflows(query, limit=state.options.bulk_limit)]
    return state, body, ids, matched


async def _each(ids: list[str], act: Callable[[str], Awaitable[str]]) -> tuple[list[str], list[BulkFailure]]:
    gate = asyncio.Semaphore(_BULK_PARALLEL)
    done: list[str] = []
    failed: list[BulkFailure] = []

    async def one(execution_id: str) -> None:
        async with gate:
            try:
                done.append(await act(execution_id))
            except Exception as exc:  # one execution's failure is its own row, never the request's
                detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
                failed.append(BulkFailure(execution_id=execution_id, error=detail))

    await asyncio.gather(*(one(i) for i in ids))
    return sorted(done), sorted(failed, key=lambda f: f.execution_id)


async def bulk_retry(request: web.Request, principal: Principal) -> web.Response:
    """Retry every failed or cancelled execution the filter selects (or count them: dry_run)."""
    state, body, ids, matched = await _bulk(request, principal, _RETRYABLE_QUERY, "retry")

    async def act(execution_id: str) -> str:
        return (await _retry(state, principal, execution_id, body.version)).execution_id

    done, failed = await _each(ids, act)
    return json_response(BulkResult(matched=matched, dry_run=body.dry_run, done=done, failed=failed))


async def bulk_cancel(request: web.Request, principal: Principal) -> web.Response:
    """Ask every running execution the filter selects to cancel (or count them: dry_run)."""
    state, body, ids, matched = await _bulk(request, principal, "ExecutionStatus = 'Running'", "cancel")

    async def act(execution_id: str) -> str:
        async with state.temporal_call():
            try:
                await state.temporal().get_workflow_handle(execution_id).cancel()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise Conflict("it has already closed") from exc
                raise
        return execution_id

    done, failed = await _each(ids, act)
    return json_response(BulkResult(matched=matched, dry_run=body.dry_run, done=done, failed=failed))

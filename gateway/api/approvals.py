"""Approvals (docs/waiting-steps.md): decide one, list those waiting for the caller's team.

A decision is the run's `approval` workflow Update: the workflow arbitrates, so of two decisions
at the same moment the first is applied and the second refused with it (409, the approval and its
decisions in the problem's `approval` member), whichever gateway replica each went through.

Who may reach a run's approval: its team, and the team an approval step names as the deciding
team (once that approval has begun); everyone else gets 404, as for any execution of another
team. Who may decide is the step's own rule (`schemas.workflow.Approval.refusal`), checked by the
workflow's validator: 403 with the reason.

Pending approvals are found through Temporal's visibility: a run waiting for a decision carries
the deciding teams in its `HooklineApprovalTeams` search attribute, and each run found is asked
for its state (the step's message, deadline and decisions so far).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from temporalio.client import WorkflowExecution, WorkflowExecutionDescription, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from gateway.api.auth import Principal
from gateway.api.executions import described_execution, execution_links, queried_state, sees_execution
from gateway.api.messages import check_filters, decode_cursor, encode_cursor, json_response, page_limit, read_model
from gateway.api.models import ApprovalList, ApprovalRequest, ExecutionApproval
from gateway.api.state import API, ApiState
from gateway.errors import BadRequest, Conflict, Forbidden, NotFound
from hookline.runs import DEFAULT_TEAM
from hookline.temporal import SA_APPROVAL_TEAMS, SA_DEFINITION, SA_TEAM, query_literal
from schemas.run import APPROVAL_UPDATE, WORKFLOW_NAME, ApprovalState, DecisionRequest, RunState

__all__ = ["decide_approval", "list_approvals", "pending_approvals_query"]

#: Runs asked for their state at once when listing.
_PARALLEL = 8


def _deciding_team(
    principal: Principal, description: WorkflowExecutionDescription, run: RunState | None, step: str
) -> bool:
    """Whether the caller's team decides the approval `step` of a run of another team: by the
    run's state, or (no worker answered) by the teams its pending approvals name."""
    approval = run.steps[step].approval if run is not None and step in run.steps else None
    if approval is not None:
        return principal.sees(approval.team)
    return run is None and principal.team in (description.typed_search_attributes.get(SA_APPROVAL_TEAMS) or ())


async def decide_approval(request: web.Request, principal: Principal) -> web.Response:
    """Approve or reject (200 with the approval); 409 once decided, with the decision(s)."""
    state = request.app[API]
    body = await read_model(request, ApprovalRequest)
    execution_id, step = request.match_info["execution_id"], request.match_info["step"]
    handle, description = await described_execution(state, execution_id)
    if not sees_execution(principal, description):
        async with state.temporal_call():
            run = await queried_state(state, handle)
        if not _deciding_team(principal, description, run, step):
            raise NotFound(f'no execution "{execution_id}"')
    decision = DecisionRequest(
        step=step,
        decision=body.decision,
        comment=body.comment,
        by=principal.name,
        team=principal.team,
        scopes=sorted(principal.scopes),
        operator=principal.operator,
    )
    async with state.temporal_call():
        try:
            decided = await handle.execute_update(APPROVAL_UPDATE, decision, result_type=ApprovalState)
        except WorkflowUpdateFailedError as exc:
            raise _refused(exc, execution_id) from None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise await _ended(state, handle, execution_id, step) from None
    return json_response(_view(description, step, decided))


async def _ended(state: ApiState, handle: WorkflowHandle[Any, Any], execution_id: str, step: str) -> Conflict:
    """409 for a decision on a run that has ended (the decision before this one may have let it
    finish at once): with the approval as the run left it, when its state can be read."""
    run = await queried_state(state, handle)
    approval = run.steps[step].approval if run is not None and step in run.steps else None
    if approval is None:
        return Conflict(f'execution "{execution_id}" has ended: nothing waits for a decision')
    return Conflict(
        f"approval {step!r} is {approval.status} already (the execution has ended)",
        extensions={"approval": approval.model_dump(mode="json")},
    )


def _refused(error: WorkflowUpdateFailedError, execution_id: str) -> Exception:
    """The answer to the workflow's refusal of a decision (`worker.waiting.Waiting.check`)."""
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return error
    if cause.type == "AlreadyDecided":
        return Conflict(cause.message, extensions={"approval": cause.details[0]} if cause.details else None)
    if cause.type == "NotWaiting":
        return Conflict(cause.message)
    if cause.type == "NotAllowed":
        return Forbidden(cause.message)
    if cause.type == "UnknownApproval":
        return NotFound(f'execution "{execution_id}": {cause.message}')
    return error


def _view(description: WorkflowExecution, step: str, approval: ApprovalState) -> ExecutionApproval:
    attributes = description.typed_search_attributes
    links = execution_links(description.id)
    return ExecutionApproval(
        execution_id=description.id,
        step=step,
        definition_id=attributes.get(SA_DEFINITION),
        team_id=attributes.get(SA_TEAM) or DEFAULT_TEAM,
        approval=approval,
        links={"execution": links["self"], "decide": approval.url},
    )


def pending_approvals_query(principal: Principal, team: str | None) -> str:
    """Temporal's visibility query for the runs waiting for a decision of `team` (None: the
    caller's team; an operator's: every team's)."""
    clauses = [f"WorkflowType = {query_literal(WORKFLOW_NAME)}", "ExecutionStatus = 'Running'"]
    deciding = team if team is not None else None if principal.operator else principal.team
    if deciding is None:
        clauses.append(f"{SA_APPROVAL_TEAMS.name} IS NOT NULL")
    else:
        clauses.append(f"{SA_APPROVAL_TEAMS.name} = {query_literal(deciding)}")
    return " AND ".join(clauses)


async def list_approvals(request: web.Request, principal: Principal) -> web.Response:
    """The approvals waiting for a decision of the caller's team (an operator: every team's),
    oldest request first within a page of runs (newest runs first)."""
    state = request.app[API]
    filters = request.query
    check_filters(filters, ("status", "team"), principal, "approvals")
    if filters.get("status", "pending") != "pending":
        raise BadRequest('"status" must be "pending": decided approvals are in their run (GET /executions/{id})')
    team = filters.get("team")
    query = pending_approvals_query(principal, team)
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    cursor = filters.get("cursor")
    client = state.temporal()
    async with state.temporal_call():
        pages = client.list_workflows(
            query, page_size=limit, next_page_token=decode_cursor(cursor, query) if cursor else None
        )
        await pages.fetch_next_page()
    found = list(pages.current_page or [])
    gate = asyncio.Semaphore(_PARALLEL)

    async def state_of(description: WorkflowExecution) -> RunState | None:
        async with gate:
            return await queried_state(state, client.get_workflow_handle(description.id, run_id=description.run_id))

    async with state.temporal_call():
        states = await asyncio.gather(*(state_of(d) for d in found))
    items: list[ExecutionApproval] = []
    unanswered: list[str] = []
    for description, run in zip(found, states, strict=True):
        if run is None:
            unanswered.append(description.id)
            continue
        for name, step in run.steps.items():
            approval = step.approval
            if approval is None or approval.status != "pending" or step.status != "waiting":
                continue
            if principal.sees(approval.team) and team in (None, approval.team):
                items.append(_view(description, name, approval))
    items.sort(key=lambda item: item.approval.requested_at)
    next_cursor = encode_cursor(pages.next_page_token, query) if pages.next_page_token else None
    return json_response(ApprovalList(items=items, unanswered=unanswered, next_cursor=next_cursor))

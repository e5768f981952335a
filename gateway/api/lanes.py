"""`GET /workflows/{id}/lanes`: the flow-control lanes of a definition (docs/flow-control.md):
per key, what runs, what waits for its turn and in which order, what was skipped or dropped.

Each running lane is asked with its `lane` query, a few at a time and bounded in time; a lane
that does not answer (no worker polls) is listed with a note instead of its lists.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from gateway.api.auth import Principal
from gateway.api.messages import json_response
from gateway.api.models import Lane, LaneList
from gateway.api.state import API, ApiState
from gateway.api.workflows import known_definition
from hookline.temporal import SA_DEFINITION, query_literal
from schemas.run import LANE_QUERY, LANE_WORKFLOW, LaneState

__all__ = ["list_lanes"]

#: Lanes asked at once.
_AT_ONCE = 8


async def _lane(state: ApiState, lane_id: str) -> Lane:
    handle = state.temporal().get_workflow_handle(lane_id)
    try:
        answer: LaneState = await handle.query(
            LANE_QUERY, result_type=LaneState, rpc_timeout=timedelta(seconds=state.options.query_timeout_s)
        )
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, TimeoutError) as exc:
        note = f"the lane did not answer ({type(exc).__name__}); is a worker polling?"
        return Lane(
            key="?",
            limit=None,
            mode="?",
            throttle=None,
            running=[],
            queued=[],
            skipped=[],
            dropped=[],
            replaced=[],
            cancelled=[],
            collecting=[],
            note=note,
        )
    config = answer.config
    throttled = config is not None and config.throttle_limit is not None
    return Lane(
        key=config.key if config else "",
        limit=config.limit if config else None,
        mode=config.mode if config else "queue",
        throttle={"limit": config.throttle_limit, "period_s": config.throttle_period_s}
        if config and throttled
        else None,
        running=answer.running,
        queued=answer.queued,
        skipped=answer.skipped,
        dropped=answer.dropped,
        replaced=answer.replaced,
        cancelled=answer.cancelled,
        collecting=answer.collected,
        note=None,
    )


async def list_lanes(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    definition_id = known_definition(state, principal, request.match_info["workflow_id"]).id
    query = (
        f"WorkflowType = {query_literal(LANE_WORKFLOW)} AND {SA_DEFINITION.name} = {query_literal(definition_id)} "
        "AND ExecutionStatus = 'Running'"
    )
    gate = asyncio.Semaphore(_AT_ONCE)

    async def one(lane_id: str) -> Lane:
        async with gate:
            return await _lane(state, lane_id)

    async with state.temporal_call():
        ids = [w.id async for w in state.temporal().list_workflows(query, limit=state.options.max_page_size)]
        lanes = await asyncio.gather(*(one(i) for i in ids))
    return json_response(LaneList(items=sorted(lanes, key=lambda lane: lane.key)))

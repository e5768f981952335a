"""`GET /runners`: each runner pool, the runner kinds its agents use, and whether a worker polls
its task queue now, so a step waiting on a pool nobody serves is visible."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.messages import json_response
from gateway.api.models import RunnerList, RunnerPool
from gateway.api.state import API
from hookline.pools import describe_pools, pools_of
from hookline.runs import team_of

__all__ = ["list_runners"]


async def list_runners(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    # Pools that only inline actions of the caller's definitions name are pools too.
    visible = (s.definition for s in state.definitions().all() if principal.sees(team_of(s)))
    pools = pools_of(state.agents, definitions=visible)
    async with state.temporal_call():
        statuses = await describe_pools(state.temporal(), state.settings.temporal, pools)
    return json_response(RunnerList(items=[RunnerPool.model_validate(dict(s)) for s in statuses]))

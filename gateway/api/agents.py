"""The agent catalog as callers may see it: what runs where, never an agent's environment
(where its secrets go) or its working directory. A team token sees the agents its team may use;
an operator token sees every agent, with the teams it is limited to."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.messages import json_response
from gateway.api.models import Agent, AgentList
from gateway.api.state import API

__all__ = ["list_agents"]


async def list_agents(request: web.Request, principal: Principal) -> web.Response:
    catalog = request.app[API].agents
    agents = catalog.agents if principal.operator else catalog.for_team(principal.team)
    items = [
        Agent(
            name=a.name,
            runner=a.runner,
            pool=a.pool_name,
            command=list(a.command),
            description=a.description,
            timeout_s=a.timeout_s,
            **({"teams": list(a.teams) if a.teams is not None else None} if principal.operator else {}),
        )
        for a in sorted(agents.values(), key=lambda a: a.name)
    ]
    return json_response(AgentList(items=items), exclude_unset=True)  # `teams` for operators only

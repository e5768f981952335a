"""The agent catalog as callers may see it: what runs where, never an agent's environment
(where its secrets go) or its working directory."""

from __future__ import annotations

from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.messages import json_response
from gateway.api.state import API

__all__ = ["list_agents"]


async def list_agents(request: web.Request, principal: Principal) -> web.Response:
    catalog = request.app[API].agents
    items = [
        {
            "name": a.name,
            "runner": a.runner,
            "pool": a.pool_name,
            "command": list(a.command),
            "description": a.description,
            "timeout_s": a.timeout_s,
        }
        for a in sorted(catalog.agents.values(), key=lambda a: a.name)
    ]
    return json_response({"items": items})

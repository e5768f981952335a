"""Overview: what needs attention first, then the numbers (events decided per second, runs by
status, dead letters, the triggers' consumer lag, runner pools with pollers), all from
GET /api/v1/overview; and the runners page: each pool, its agents, its pollers and last poll."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.api.routing import API_PREFIX
from gateway.ui.api import ConsoleApi
from gateway.ui.console import page

__all__ = ["overview_page", "runners_page"]

#: An API listing → the console page that shows it (the query carries over: its filters).
_PAGES = {"/executions": "/ui/runs", "/dlq": "/ui/dlq", "/runners": "/ui/runners", "/approvals": "/ui/approvals"}
#: The run statuses the overview shows, in this order (the others only when there are some).
_STATUSES = ("running", "failed", "succeeded", "cancelled", "timed_out", "terminated")


def console_link(api_link: str) -> str:
    """The console page of an API listing's URL (the overview's attention links), with its query;
    the overview itself for a listing the console has no page of."""
    parts = urllib.parse.urlsplit(api_link)
    target = _PAGES.get(parts.path.removeprefix(API_PREFIX))
    if target is None:
        return "/ui/"
    return f"{target}?{parts.query}" if parts.query else target


def _statuses(runs: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    if runs is None:
        return []
    counts: Mapping[str, int] = runs["by_status"]
    shown = [(s, counts.get(s, 0)) for s in _STATUSES]
    return shown + [(s, n) for s, n in sorted(counts.items()) if s not in _STATUSES and n]


@page("overview.html")
async def overview_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    answer = await api.get("/overview")
    attention = [{**item, "href": console_link(item["links"].get("self", ""))} for item in answer["attention"]]
    return {"title": "Overview", "o": answer, "attention": attention, "statuses": _statuses(answer["runs"])}


def _ago(at: str | None, now: datetime) -> str:
    """How long ago `at` (an API time) was, for people: 4 s, 3 min, 2 h, 5 d."""
    if not at:
        return "never"
    seconds = max((now - datetime.fromisoformat(at)).total_seconds(), 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


@page("runners.html")
async def runners_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    runners = await api.get("/runners")
    agents = await api.get("/agents")
    by_pool: dict[str, list[Mapping[str, Any]]] = {}
    for agent in agents["items"]:
        by_pool.setdefault(agent["pool"], []).append(agent)
    now = datetime.now(UTC)
    pools = [{**p, "agents": by_pool.get(p["pool"], []), "ago": _ago(p["last_poll"], now)} for p in runners["items"]]
    return {"title": "Runners", "pools": pools}

"""Overview: what needs attention first, then the numbers (events in, runs by status, dead
letters, runner pools)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.ui.api import ApiError, ConsoleApi
from gateway.ui.console import page

__all__ = ["overview_page", "runners_page"]


async def _or_problem(api: ConsoleApi, path: str, query: Mapping[str, Any] | None = None) -> Any:
    """A part of the overview: the API's answer, or its problem (one unavailable part must not
    hide the others)."""
    try:
        return await api.get(path, query)
    except ApiError as exc:
        return {"problem": f"{exc.status}: {exc.detail}"}


@page("overview.html")
async def overview_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    minute_ago = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    recent = await _or_problem(api, "/events", {"since": minute_ago, "limit": 200})
    failed = await _or_problem(api, "/executions", {"status": "failed", "limit": 10})
    running = await _or_problem(api, "/executions", {"status": "running", "limit": 200})
    dlq = await _or_problem(api, "/dlq", {"limit": 200})
    runners = await _or_problem(api, "/runners")
    attention = []
    if failed.get("items"):
        attention.append(
            (
                "failed",
                f"{len(failed['items'])}{'+' if failed['next_cursor'] else ''} failed runs",
                "/ui/runs?status=failed",
            )
        )
    if dlq.get("items"):
        attention.append(("dlq", f"{len(dlq['items'])}{'+' if dlq['next_cursor'] else ''} dead letters", "/ui/dlq"))
    for pool in runners.get("items", []):
        if not pool["polling"]:
            attention.append(("pool", f"runner pool {pool['pool']} has no pollers", "/ui/runners"))
    return {
        "title": "Overview",
        "recent": recent,
        "failed": failed,
        "running": running,
        "dlq": dlq,
        "runners": runners,
        "attention": attention,
    }


@page("runners.html")
async def runners_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    return {"title": "Runners", "runners": await api.get("/runners")}

"""Runs: the list with filters; a run's page with its steps as a graph (live), a timeline of
step starts and ends, each step's output and error, compensations, the event that started it;
cancel and retry."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway.ui.api import ApiError, ConsoleApi
from gateway.ui.console import Done, Form, LiveTurn, action, live, page, seg
from gateway.ui.session import CSRF_FIELD, Session
from gateway.ui.views.approvals import may_decide
from schemas.workflow import dependency_graph

__all__ = ["cancel_run", "retry_run", "run_page", "run_stream", "runs_page"]

FILTERS = ("status", "definition", "team", "source", "event", "trigger", "since", "until")
STATUSES = ("running", "succeeded", "failed", "cancelled", "terminated", "timed_out")


@page("runs.html")
async def runs_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    filters = {name: request.query[name] for name in FILTERS if request.query.get(name)}
    listing = await api.get("/executions", {**filters, "cursor": request.query.get("cursor"), "limit": 50})
    return {
        "title": "Runs",
        "filters": filters,
        "statuses": STATUSES,
        "items": listing["items"],
        "next_cursor": listing["next_cursor"],
        "query": urllib.parse.urlencode(filters),
    }


async def _run_view(api: ConsoleApi, execution_id: str, definitions: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the run page and its live part show: the execution, the graph of its steps (from the
    definition version it ran, read once per `definitions`, which a live part keeps), and their
    timeline."""
    execution = await api.get(f"/executions/{seg(execution_id)}")
    definitions = {} if definitions is None else definitions
    definition_id, version = execution.get("definition_id"), execution.get("definition_version")
    key = f"{definition_id}@{version}"
    if definition_id and key not in definitions:
        try:
            query = {"version": version} if version else None
            definitions[key] = (await api.get(f"/workflows/{seg(definition_id)}", query))["definition"]
        except ApiError:  # the definition was deleted or is not readable: the steps still show
            definitions[key] = None
    document = definitions.get(key)
    levels = _levels(document, execution["steps"]) if document is not None else []
    if not levels:
        levels = [[{"name": name, "requires": [], "state": state} for name, state in execution["steps"].items()]]
    return {"execution": execution, "levels": levels, "timeline": _timeline(execution["steps"])}


def _levels(document: Mapping[str, Any], states: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """The steps in columns: each step one column right of the last step it requires."""

    def pairs(group: str) -> list[tuple[str, Any]]:
        return [
            (s["name"], s.get("requires")) for s in document.get(group) or [] if isinstance(s, dict) and "name" in s
        ]

    deps = dependency_graph(pairs("steps"), pairs("parallel"))
    depth: dict[str, int] = {}

    def level(name: str, path: tuple[str, ...] = ()) -> int:
        if name not in depth:
            before = [d for d in deps.get(name, ()) if d in deps and d not in path]
            depth[name] = 1 + max((level(d, (*path, name)) for d in before), default=-1)
        return depth[name]

    columns: list[list[dict[str, Any]]] = []
    for name in deps:
        at = level(name)
        while len(columns) <= at:
            columns.append([])
        columns[at].append(
            {"name": name, "requires": list(deps[name]), "state": states.get(name, {"status": "pending"})}
        )
    return columns


def _timeline(states: Mapping[str, Any]) -> dict[str, Any]:
    """Each step's start and end as fractions of the run's span so far."""
    spans = []
    for name, state in states.items():
        if state.get("started_at"):
            start = datetime.fromisoformat(state["started_at"]).timestamp()
            end = datetime.fromisoformat(state["finished_at"]).timestamp() if state.get("finished_at") else time.time()
            spans.append((name, start, max(end, start), state.get("status", "pending")))
    if not spans:
        return {"rows": [], "total_s": 0.0}
    first = min(s for _, s, _, _ in spans)
    total = max(max(e for _, _, e, _ in spans) - first, 1e-3)
    rows = [
        {
            "name": name,
            "status": status,
            "left": 100 * (start - first) / total,
            "width": max(100 * (end - start) / total, 0.4),
            "seconds": end - start,
        }
        for name, start, end, status in sorted(spans, key=lambda s: s[1])
    ]
    return {"rows": rows, "total_s": total}


@page("run.html")
async def run_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    execution_id = request.match_info["execution_id"]
    view = await _run_view(api, execution_id)
    return {"title": f"Run {execution_id}", "may_decide": may_decide, **view}


@live("run", "<p class=problem>{}</p>")
async def run_stream(request: web.Request, api: ConsoleApi, session: Session) -> LiveTurn:
    """The run's steps (graph, timeline, details) whenever they change, until the run has ended."""
    execution_id = request.match_info["execution_id"]
    template = aiohttp_jinja2.get_env(request.app).get_template("_run_live.html")
    definitions: dict[str, Any] = {}  # the version it ran does not change: read once

    async def turn() -> tuple[str | None, bool]:
        view = await _run_view(api, execution_id, definitions)
        html = template.render(
            **view, can=lambda scope: scope in session.principal.scopes, csrf=session.csrf, csrf_field=CSRF_FIELD
        )
        return html, view["execution"]["status"] == "running"

    return turn


@action
async def cancel_run(request: web.Request, api: ConsoleApi, form: Form) -> Done:
    execution_id = request.match_info["execution_id"]
    await api.post(f"/executions/{seg(execution_id)}/cancel")
    return Done(f"/ui/runs/{seg(execution_id)}", f"Cancellation of {execution_id} requested.")


@action
async def retry_run(request: web.Request, api: ConsoleApi, form: Form) -> Done:
    execution_id = request.match_info["execution_id"]
    version = form.get("version") if form.get("version") in ("same", "latest") else "same"
    started = await api.post(f"/executions/{seg(execution_id)}/retry", {"version": version})
    new_id = started["execution_id"]
    return Done(f"/ui/runs/{seg(new_id)}", f"Retry of {execution_id} started as {new_id}.")

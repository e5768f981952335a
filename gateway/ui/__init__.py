"""The web console under /ui: server-rendered pages on the REST API, in the gateway's process.

Pages are Jinja2 templates rendered by aiohttp-jinja2; htmx (vendored under static/, no build
step, nothing fetched from elsewhere) swaps in the live parts from server-sent events. Every page
works without JavaScript: live lists then update on reload. All data comes from the API, called
in-process as the signed-in user (`gateway.ui.api`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.settings import GatewaySettings
from gateway.ui.console import CONSOLE, see_other, seg
from gateway.ui.views import approvals, auth, definitions, dlq, events, overview, runs

__all__ = ["add_console_routes"]

STATIC = Path(__file__).parent / "static"


def when(value: Any) -> str:
    """An API time (ISO 8601) as the console shows it: UTC, to the second, with milliseconds."""
    if not value:
        return "—"
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d} UTC"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


async def _home(request: web.Request) -> web.StreamResponse:
    return see_other("/ui/")


def add_console_routes(app: web.Application, settings: GatewaySettings) -> None:
    """Serve the console on `app` (which has the API's routes)."""
    app[CONSOLE] = settings.console
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gateway.ui", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["pretty"] = pretty
    env.filters["seg"] = seg
    app.router.add_static("/ui/static", STATIC, append_version=False)
    app.router.add_get("/ui", _home)
    app.router.add_get("/ui/", overview.overview_page)
    app.router.add_get("/ui/runners", overview.runners_page)
    app.router.add_get("/ui/dlq", dlq.dlq_page)
    app.router.add_post("/ui/dlq/replay", dlq.replay_dry_run)
    app.router.add_post("/ui/dlq/replay/confirm", dlq.confirm_replay)
    app.router.add_get("/ui/login", auth.login_form)
    app.router.add_post("/ui/login", auth.login)
    app.router.add_post("/ui/logout", auth.logout)
    app.router.add_get("/ui/events", events.events_page)
    app.router.add_get("/ui/events/stream", events.events_stream)
    app.router.add_get("/ui/events/{event_id}", events.event_page)
    app.router.add_get("/ui/runs", runs.runs_page)
    app.router.add_get("/ui/approvals", approvals.approvals_page)
    # A run's id holds a `/`: its pages take it quoted or not (a URL pasted from a log).
    app.router.add_get("/ui/runs/{execution_id:.+}/stream", runs.run_stream)
    app.router.add_post("/ui/runs/{execution_id:.+}/approvals/{step}", approvals.decide)
    app.router.add_post("/ui/runs/{execution_id:.+}/cancel", runs.cancel_run)
    app.router.add_post("/ui/runs/{execution_id:.+}/retry", runs.retry_run)
    app.router.add_get("/ui/runs/{execution_id:.+}", runs.run_page)
    app.router.add_get("/ui/definitions", definitions.definitions_page)
    app.router.add_get("/ui/definitions/new", definitions.new_page)  # before the page of a definition "new"
    app.router.add_post("/ui/definitions/new", definitions.create_definition)
    app.router.add_get("/ui/definitions/{definition_id}", definitions.definition_page)
    app.router.add_get("/ui/definitions/{definition_id}/diff", definitions.diff_page)
    app.router.add_get("/ui/definitions/{definition_id}/edit", definitions.edit_page)
    app.router.add_post("/ui/definitions/{definition_id}/edit", definitions.save_definition)
    app.router.add_get("/ui/definitions/{definition_id}/delete", definitions.delete_page)
    app.router.add_post("/ui/definitions/{definition_id}/delete", definitions.delete_definition)
    app.router.add_get("/ui/definitions/{definition_id}/start", definitions.start_page)
    app.router.add_post("/ui/definitions/{definition_id}/start", definitions.start_definition)

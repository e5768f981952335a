"""Events: the live stream (filtered, pausable) and one event's page — its payload, every
definition that matched and every one that did not with the condition that failed, and the runs
it started."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiMapping

from gateway.ui.api import ConsoleApi
from gateway.ui.console import LiveTurn, live, page, seg
from gateway.ui.session import Session

__all__ = ["event_page", "events_page", "events_stream"]

#: The filters of GET /api/v1/events the list offers.
FILTERS = ("source", "type", "subject", "label", "matched", "since", "until")
#: How far back the live stream looks for events decided since the last look (an event is listed
#: by when it was accepted, and decided a moment later).
_LOOKBACK = timedelta(minutes=2)


def _filters(query: MultiMapping[str]) -> dict[str, Any]:
    """The list's filters from its URL; `label` may repeat, and one field may hold several
    `key=value` separated by spaces (all must hold)."""
    found: dict[str, Any] = {name: query[name] for name in FILTERS if name != "label" and query.get(name)}
    labels = [label for value in query.getall("label", []) for label in value.split()]
    if labels:
        found["label"] = labels
    return found


@page("events.html")
async def events_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    filters = _filters(request.query)
    listing = await api.get("/events", {**filters, "cursor": request.query.get("cursor"), "limit": 50})
    live = not request.query.get("cursor") and not filters.get("until")
    return {
        "title": "Events",
        "filters": filters,
        "items": listing["items"],
        "next_cursor": listing["next_cursor"],
        "live": live,
        "stream_query": urllib.parse.urlencode(filters, doseq=True),
    }


@page("event.html")
async def event_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    event_id = request.match_info["event_id"]
    record = await api.get(f"/events/{seg(event_id)}")
    return {"title": f"Event {event_id}", "record": record}


@live("event", "<tr><td colspan=6 class=problem>{}</td></tr>")
async def events_stream(request: web.Request, api: ConsoleApi, session: Session) -> LiveTurn:
    """Each newly decided event that passes the filters, as a table row."""
    filters = _filters(request.query)
    filters.pop("until", None)
    template = aiohttp_jinja2.get_env(request.app).get_template("_event_rows.html")
    seen: set[str] = set(request.query.getall("seen", []))
    since = (datetime.now(UTC) - _LOOKBACK).isoformat()

    async def turn() -> tuple[str | None, bool]:
        listing = await api.get("/events", {**filters, "since": since, "limit": 100})
        fresh = [item for item in listing["items"] if item["id"] not in seen]
        seen.update(item["id"] for item in fresh)
        return (template.render(items=fresh, fresh=True) if fresh else None), True

    return turn

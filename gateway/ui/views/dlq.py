"""Dead letters: the records the triggers could not handle and why, filtered and paged; replay of
the selected ones or of all a filter selects — a dry run first, whose confirmation page says
how many and which, then the replay itself (GET /api/v1/dlq, POST /api/v1/dlq/replay)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.ui.api import ConsoleApi
from gateway.ui.console import Done, Form, action, page, render, session_of

__all__ = ["confirm_replay", "dlq_page", "replay_dry_run"]

#: The filters of GET /api/v1/dlq the page offers.
FILTERS = ("reason", "definition", "topic", "team", "source")
#: How many ids the confirmation page lists before it says "and N more".
_SHOWN = 200


def _filters(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: value for name in FILTERS if isinstance(value := values.get(name), str) and value}


def _page_url(filters: Mapping[str, str]) -> str:
    return "/ui/dlq" + ("?" + urllib.parse.urlencode(filters) if filters else "")


@page("dlq.html")
async def dlq_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    filters = _filters(request.query)
    listing = await api.get("/dlq", {**filters, "cursor": request.query.get("cursor"), "limit": 50})
    return {
        "title": "Dead letters",
        "filters": filters,
        "items": listing["items"],
        "next_cursor": listing["next_cursor"],
        "query": urllib.parse.urlencode(filters),
        "back": request.path_qs,
    }


def _selection(form: Form) -> tuple[list[str] | None, dict[str, str]]:
    """The ids a replay names (None: it replays by filter), and the filter of the page it came from."""
    filters = _filters(form)
    if form.get("by") == "filter":
        return None, filters
    return [i for i in form.getall("id", []) if isinstance(i, str) and i], filters


def _body(ids: list[str] | None, filters: Mapping[str, str], dry_run: bool) -> dict[str, Any]:
    chosen: dict[str, Any] = {"ids": ids} if ids is not None else {"filter": dict(filters)}
    return {**chosen, "dry_run": dry_run}


@action
async def replay_dry_run(request: web.Request, api: ConsoleApi, form: Form) -> Done | web.Response:
    """Count what a replay would re-publish, and ask to confirm it (nothing is replayed yet)."""
    ids, filters = _selection(form)
    if ids == []:
        return Done(_page_url(filters), "Select the dead letters to replay first.", error=True)
    counted = await api.post("/dlq/replay", _body(ids, filters, dry_run=True))
    shown = counted["selected"]  # exactly what the replay would act on now
    context = {
        "title": "Replay dead letters?",
        "matched": counted["matched"],
        "ids": ids,
        "shown": shown[:_SHOWN],
        "filters": filters,
        "back": _page_url(filters),
    }
    return render(request, "dlq_confirm.html", context, session_of(request))


@action
async def confirm_replay(request: web.Request, api: ConsoleApi, form: Form) -> Done:
    """The replay the confirmation page asked for; the dead letters page says what was replayed."""
    ids, filters = _selection(form)
    if ids == []:
        return Done(_page_url(filters), "Nothing to replay: no dead letter was selected.", error=True)
    replayed = (await api.post("/dlq/replay", _body(ids, filters, dry_run=False)))["replayed"]
    if not replayed:
        return Done(_page_url(filters), "Nothing was replayed: no dead letter matches any more.", error=True)
    listed = ", ".join(replayed[:20]) + (f" and {len(replayed) - 20} more" if len(replayed) > 20 else "")
    letters = "1 dead letter" if len(replayed) == 1 else f"{len(replayed)} dead letters"
    return Done(_page_url(filters), f"Replayed {letters}: {listed}.")

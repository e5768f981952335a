"""Approvals: the ones waiting for the caller's team, and deciding one (from this list or from
the run's page). Who may decide is the approval step's own rule, which the API enforces; the
console shows the buttons only to a token that rule lets decide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.api.auth import Principal
from gateway.ui.api import ConsoleApi
from gateway.ui.console import Done, Form, action, page, seg

__all__ = ["approvals_page", "decide", "may_decide"]


def may_decide(principal: Principal | None, approval: Mapping[str, Any]) -> bool:
    """Whether the API would take `principal`'s decision on `approval` (pending, its team, its
    scope, and its named tokens if it names any)."""
    if principal is None or approval.get("status") != "pending":
        return False
    if not principal.sees(str(approval.get("team", ""))):
        return False
    if approval.get("scope", "execute") not in principal.scopes:
        return False
    tokens = approval.get("tokens") or []
    return not tokens or principal.name in tokens


@page("approvals.html")
async def approvals_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    listing = await api.get("/approvals", {"status": "pending", "cursor": request.query.get("cursor")})
    return {
        "title": "Approvals",
        "items": listing["items"],
        "unanswered": listing["unanswered"],
        "next_cursor": listing["next_cursor"],
        "may_decide": may_decide,
    }


@action
async def decide(request: web.Request, api: ConsoleApi, form: Form) -> Done:
    execution_id, step = request.match_info["execution_id"], request.match_info["step"]
    decision = form.get("decision")
    comment = form.get("comment")
    body = {"decision": decision, "comment": comment if isinstance(comment, str) and comment.strip() else None}
    await api.post(f"/executions/{seg(execution_id)}/approvals/{seg(step)}", body)
    verb = "Approved" if decision == "approve" else "Rejected"
    return Done(f"/ui/runs/{seg(execution_id)}", f"{verb}: step {step} of {execution_id}.")

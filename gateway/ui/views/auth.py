"""Sign in with an API token; sign out."""

from __future__ import annotations

from aiohttp import web

from gateway.api.state import API
from gateway.errors import Unauthorized
from gateway.ui.api import ConsoleApi
from gateway.ui.console import CONSOLE, Done, Form, action, local_path, render, see_other, session_of
from gateway.ui.session import end_session, sign_in

__all__ = ["login", "login_form", "logout"]


async def login_form(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    next_path = local_path(request.query.get("next"))
    if session is not None:
        return see_other(next_path)
    context = {"next": next_path, "hours": f"{request.app[CONSOLE].session_hours:g}", "problem": None}
    return render(request, "login.html", context, None)


async def login(request: web.Request) -> web.StreamResponse:
    """The token is checked like an API request's bearer token, and then forgotten."""
    form = await request.post()
    token = form.get("token")
    requested = form.get("next")
    next_path = local_path(requested if isinstance(requested, str) else None)
    state = request.app[API]
    try:
        principal = state.tokens.authenticate(f"Bearer {token}" if isinstance(token, str) else None)
    except Unauthorized as exc:
        context = {"next": next_path, "hours": f"{request.app[CONSOLE].session_hours:g}", "problem": exc.detail}
        return render(request, "login.html", context, None, status=401)
    response = see_other(next_path)
    sign_in(response, request, principal, state.tokens, request.app[CONSOLE])
    return response


@action
async def logout(request: web.Request, api: ConsoleApi, form: Form) -> Done | web.Response:
    response = see_other("/ui/login")
    end_session(response)
    return response

"""What every console page and action shares: the session check, the API on behalf of its user,
rendering, CSRF on every change, and a one-shot message after a redirect.

A page is `async (request, api) -> context` rendered with its template; an action is
`async (request, api, form) -> Done | web.Response`, run only for a signed-in user whose form
carries the session's CSRF token; a live part is `async (request, api, session) -> turn`, whose
turns a server-sent event stream sends. All see Hookline only through `ConsoleApi`.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_sse import sse_response
from markupsafe import escape
from multidict import MultiDictProxy

from gateway.api.state import API
from gateway.errors import Forbidden
from gateway.settings import ConsoleOptions
from gateway.ui.api import ApiError, ConsoleApi
from gateway.ui.session import CSRF_FIELD, CSRF_HEADER, Session, check_csrf, read_session

__all__ = [
    "CONSOLE",
    "Done",
    "Form",
    "LiveTurn",
    "action",
    "live",
    "local_path",
    "page",
    "render",
    "see_other",
    "seg",
    "session_of",
    "set_flash",
]

CONSOLE = web.AppKey("console", ConsoleOptions)
#: Scripts and styles from /ui/static only (inline style attributes allowed: the timeline's bars);
#: no framing; forms post only to the console.
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
FLASH = "hookline_flash"

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
PageView = Callable[[web.Request, ConsoleApi], Awaitable[Mapping[str, Any]]]
ActionView = Callable[[web.Request, ConsoleApi, Form], Awaitable["Done | web.Response"]]
#: One turn of a live part: the HTML to send now (None: nothing new), and whether more may come.
LiveTurn = Callable[[], Awaitable[tuple[str | None, bool]]]
LiveView = Callable[[web.Request, ConsoleApi, Session], Awaitable[LiveTurn]]


@dataclass(frozen=True, slots=True)
class Done:
    """Where an action sends the browser next (303), and what to tell the user there."""

    location: str
    message: str | None = None
    error: bool = False


def seg(value: object) -> str:
    """`value` as one segment of a console or API path: ids may hold `/` (a run's id does)."""
    return urllib.parse.quote(str(value), safe=":~")


def local_path(candidate: str | None, default: str = "/ui/") -> str:
    """`candidate` if it is a path of the console (never another site: an open redirect)."""
    if candidate and candidate.startswith("/ui") and not candidate.startswith("//") and "\\" not in candidate:
        parsed = urllib.parse.urlsplit(candidate)
        if not parsed.scheme and not parsed.netloc:
            return candidate
    return default


def session_of(request: web.Request) -> Session | None:
    return read_session(request, request.app[API].tokens)


def _sign_in_first(request: web.Request) -> web.Response:
    """Off to sign in, and back here afterwards. A page's own refresh (htmx) whose session has
    ended sends the whole page there (HX-Redirect), rather than swapping the sign-in form in."""
    target = "/ui/login?" + urllib.parse.urlencode({"next": request.path_qs})
    if request.headers.get("HX-Request") == "true":
        return web.Response(status=401, headers={"HX-Redirect": target})
    return web.Response(status=302, headers={"Location": target})


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    session: Session | None,
    *,
    status: int = 200,
) -> web.Response:
    """`template` with what every page shows: who is signed in, what they may do, the CSRF token,
    the message an action left."""
    principal = session.principal if session else None
    common: dict[str, Any] = {
        "principal": principal,
        "csrf": session.csrf if session else "",
        "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "can": (lambda scope: principal is not None and scope in principal.scopes),
        "path": request.path,
        "path_qs": request.path_qs,
        "refresh_ms": int(request.app[CONSOLE].refresh_s * 1000),
        "now": time.time(),
        "flash": _flash(request),
    }
    response = aiohttp_jinja2.render_template(template, request, {**common, **context}, status=status)
    if common["flash"] is not None:
        response.del_cookie(FLASH, path="/ui")
    # No page of the console may be framed by another site, nor cached by a shared cache.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _flash(request: web.Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    error, _, message = urllib.parse.unquote(raw).partition(":")
    return {"message": message[:500], "error": error == "error"}


def set_flash(response: web.StreamResponse, message: str, error: bool = False) -> None:
    """Show `message` on the next page the browser opens."""
    value = urllib.parse.quote(("error:" if error else "ok:") + message[:500])
    response.set_cookie(FLASH, value, max_age=60, path="/ui", httponly=True, samesite="Strict")


def page(template: str) -> Callable[[PageView], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A GET page: signed-in users only (others are sent to sign in and back)."""

    def wrap(view: PageView) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            if session is None:
                return _sign_in_first(request)
            api = ConsoleApi(request, session.principal)
            try:
                context = await view(request, api)
            except ApiError as exc:
                return render(request, "error.html", {"error": exc}, session, status=exc.status)
            return render(request, template, context, session)

        handle.__name__ = view.__name__
        return handle

    return wrap


def action(view: ActionView) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST that changes something: a signed-in user, and the session's CSRF token in the form
    (or the X-CSRF-Token header); then the API call, and a redirect with its outcome."""

    async def handle(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            raise Forbidden("sign in to the console first (/ui/login); the session has ended or was never begun")
        api = ConsoleApi(request, session.principal)
        form = await request.post()
        presented = form.get(CSRF_FIELD)
        check_csrf(session, presented if isinstance(presented, str) else request.headers.get(CSRF_HEADER))
        back = local_path(_text(form, "back"), request.path)
        try:
            outcome = await view(request, api, form)
        except ApiError as exc:
            outcome = Done(back, f"{exc.status}: {exc.detail}", error=True)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        response = see_other(local_path(outcome.location, back))
        if outcome.message:
            set_flash(response, outcome.message, outcome.error)
        return response

    handle.__name__ = view.__name__
    return handle


def see_other(location: str) -> web.Response:
    """303 to `location` (a path of the console)."""
    return web.Response(status=303, headers={"Location": location})


def _text(form: Form, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def live(event: str, problem: str) -> Callable[[LiveView], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A live part of a page: server-sent events named `event` for a signed-in user (401
    otherwise), until the browser goes, the session ends, or a turn says nothing more will come.
    The view is called once and returns its turn, which the stream takes every `console.refresh_s`
    and sends when it differs from what it sent last. An API error is sent as `problem` (its
    `{}` the status and detail, escaped) and tried again after five times the refresh."""

    def wrap(view: LiveView) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            session = session_of(request)
            if session is None:
                raise web.HTTPUnauthorized(text="sign in to the console first")
            turn = await view(request, ConsoleApi(request, session.principal), session)
            refresh_s = request.app[CONSOLE].refresh_s
            last: str | None = None
            async with sse_response(request, ping_interval=15) as stream:
                while stream.is_connected() and session.expires > time.time():
                    try:
                        html, more = await turn()
                    except ApiError as exc:
                        await stream.send(problem.format(escape(f"{exc.status}: {exc.detail}")), event=event)
                        await asyncio.sleep(refresh_s * 5)
                        continue
                    if html is not None and html != last:
                        await stream.send(html.replace("\n", " "), event=event)  # one data line
                        last = html
                    if not more:
                        break
                    await asyncio.sleep(refresh_s)
            return stream

        handle.__name__ = view.__name__
        return handle

    return wrap

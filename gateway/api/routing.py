"""The route table's entry type, and the wrapper that authenticates each call.

One table (`gateway.api.ROUTES`) registers the aiohttp routes and builds the OpenAPI document,
so the two cannot drift apart; each route names the models of its answers, which its handler
builds and the document describes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from gateway.api.audit import entry
from gateway.api.auth import ANONYMOUS, Principal
from gateway.api.state import API
from gateway.errors import GatewayError
from gateway.ingress import read_body
from gateway.settings import Scope

__all__ = ["API_PREFIX", "CONSOLE_PRINCIPAL", "ApiHandler", "Param", "Route", "guarded"]

API_PREFIX = "/api/v1"

ApiHandler = Callable[[web.Request, Principal], Awaitable[web.Response]]

#: Set by the console (`gateway.ui.api`) on the API requests it makes for a signed-in user, who
#: holds a session cookie rather than the bearer token. Only server code can set a request's
#: state; a request from outside is always authenticated by its Authorization header.
CONSOLE_PRINCIPAL = web.RequestKey("console_principal", Principal)


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter, as OpenAPI describes it."""

    name: str
    where: Literal["query", "header"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # below API_PREFIX, with aiohttp's {placeholders}
    handler: ApiHandler
    scope: Scope | None  # None: no token needed
    summary: str
    #: status → the model of the JSON answer, which the handler builds (None: no body)
    responses: Mapping[int, type[BaseModel] | None]
    #: error statuses this route answers besides 401/403 (added for every route with a scope)
    errors: tuple[int, ...] = ()
    body: str | None = None  # name of the request body's schema in the components
    params: tuple[Param, ...] = ()
    #: The action a write is audited as (`gateway.api.audit`); None: the route changes nothing.
    audit: str | None = None

    @property
    def url(self) -> str:
        return API_PREFIX + self.path


def guarded(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of `route`: token (401), scope (403), then the route's own handler."""

    async def handle(request: web.Request) -> web.Response:
        principal = ANONYMOUS
        state = request.app[API]
        if request.body_exists:  # within the read timeout (408); the handler reads it from memory
            await read_body(request, state.settings.gateway.read_timeout_s)
        if route.scope is None:
            return await route.handler(request, principal)
        principal = request.get(CONSOLE_PRINCIPAL) or state.tokens.authenticate(request.headers.get("Authorization"))
        if route.audit is None:
            principal.require(route.scope)
            return await route.handler(request, principal)
        status: int = 500
        outcome: str | None = "the request failed unexpectedly"
        response = None
        try:
            principal.require(route.scope)
            response = await route.handler(request, principal)
            status, outcome = response.status, None
            return response
        except GatewayError as exc:
            status, outcome = exc.status, exc.detail
            raise
        finally:  # refused writes too: who tried what is the point of an audit
            await state.audited(entry(route.audit, principal, request, status, outcome, response))

    handle.__name__ = route.handler.__name__
    return handle

"""The console's only way to Hookline's data: the REST API, called in-process.

Each call is routed like an HTTP request to /api/v1 (the same router, the same handlers, the same
scope checks, team scoping and audit), on behalf of the signed-in user: the request carries the
session's principal in its state (`CONSOLE_PRINCIPAL`) instead of an Authorization header. So the
console can show and do exactly what the API offers, and nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from gateway.api.auth import Principal
from gateway.api.routing import API_PREFIX, CONSOLE_PRINCIPAL
from gateway.errors import GatewayError
from schemas.validation import SchemaError

__all__ = ["ApiError", "ConsoleApi"]


class ApiError(Exception):
    """The API refused or failed a call: its status and what it said."""

    def __init__(self, status: int, detail: str, errors: list[SchemaError] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        #: Where a definition (or another document) is wrong: location and message.
        self.errors = errors or []


class ConsoleApi:
    """API calls for one console request, as its signed-in user."""

    def __init__(self, request: web.Request, principal: Principal) -> None:
        """Made before the console's own request body is read (aiohttp clones only unread requests)."""
        self._request = request
        self._base = request.clone()
        self.principal = principal

    async def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return await self.call("GET", path, query)

    async def post(self, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        return await self.call("POST", path, query, body)

    async def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> Any:
        """The JSON answer of `method API_PREFIX+path`; `ApiError` for any status ≥ 400."""
        url = URL(API_PREFIX + path)
        if query:  # a list value: the parameter repeated (`label=a=1&label=b=2`)
            pairs = [
                (k, str(item))
                for k, v in query.items()
                for item in (v if isinstance(v, list | tuple) else [v])
                if item not in (None, "")
            ]
            url = url.with_query(pairs)
        payload = raw_body if raw_body is not None else (None if body is None else orjson.dumps(body))
        sent = {"Accept": "application/json"}
        if payload is not None:
            sent["Content-Type"] = "application/json"
            sent["Content-Length"] = str(len(payload))
        sent.update(headers or {})
        inner = self._base.clone(method=method, rel_url=url, headers=sent)
        inner[CONSOLE_PRINCIPAL] = self.principal
        # aiohttp gives no public way to hand a cloned request a body of its own, nor to route one
        # outside the server's dispatch; these two attributes are what its dispatcher and read() use.
        inner._read_bytes = payload if payload is not None else b""
        match = await self._request.app.router.resolve(inner)
        match.add_app(self._request.app)  # as the server's dispatch does
        match.freeze()
        inner._match_info = match
        if match.http_exception is not None:
            raise ApiError(match.http_exception.status, f"{method} {url.path}: {match.http_exception.reason}")
        try:
            response = await match.handler(inner)
        except GatewayError as exc:
            raise ApiError(exc.status, exc.detail, exc.errors) from exc
        except web.HTTPException as exc:
            raise ApiError(exc.status, exc.reason) from exc
        if not isinstance(response, web.Response):
            raise ApiError(500, f"{method} {url.path} answered with a stream, which the console cannot read")
        body = response.body
        data = orjson.loads(body) if isinstance(body, bytes | bytearray) and body else None
        if response.status >= 400:
            detail = data.get("detail") if isinstance(data, dict) else None
            raise ApiError(response.status, str(detail or response.reason))
        return data

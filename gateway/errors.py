"""Gateway errors and their single translation to `application/problem+json` (RFC 9457)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from aiohttp import web
from prometheus_client import Counter

from hookline.logging import get_logger
from schemas.validation import SchemaError

__all__ = [
    "UNAVAILABLE_COUNTER",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InvalidCredentials",
    "InvalidPayload",
    "InvalidSignature",
    "MissingCredentials",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "SlowBody",
    "StaleTimestamp",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnavailableCause",
    "UnknownSource",
    "Unprocessable",
    "UnsupportedMediaType",
    "answer_problems",
    "problem_middleware",
    "problem_response",
]

log = get_logger(__name__)

PROBLEM_TYPE = "https://hookline.dev/problems/"


class GatewayError(Exception):
    status = 500
    title = "Internal error"
    slug = "internal"
    #: Close the connection after answering (the request body may still be arriving).
    close_connection = False

    def __init__(
        self,
        detail: str,
        *,
        errors: list[SchemaError] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        #: RFC 9457 extension members of the problem (e.g. the decision a 409 lost to).
        self.extensions = extensions or {}


class BadRequest(GatewayError, ValueError):
    status, title, slug = 400, "Bad request", "bad-request"


class InvalidPayload(BadRequest):
    title, slug = "Payload does not match the schema", "invalid-payload"


class UnsupportedMediaType(GatewayError, ValueError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class PayloadTooLarge(GatewayError, ValueError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnknownSource(GatewayError, LookupError):
    status, title, slug = 404, "Unknown source", "unknown-source"


class RequestTimeout(GatewayError, TimeoutError):
    """The client did not send its whole body in time; the connection is closed."""

    status, title, slug = 408, "Request timeout", "request-timeout"
    close_connection = True


class TooManyRequests(GatewayError):
    """A source over its rate limit (never an Alertmanager source: it drops what gets 429)."""

    status, title, slug = 429, "Too many requests", "too-many-requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class Unauthorized(GatewayError, PermissionError):
    """No bearer token, or one that is not configured (401 + WWW-Authenticate). `challenge`
    replaces the default Bearer challenge (webhook sources accept other schemes)."""

    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str, *, invalid: bool = False, challenge: str | None = None) -> None:
        if challenge is None:
            challenge = 'Bearer realm="hookline"' + (', error="invalid_token"' if invalid else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class MissingCredentials(Unauthorized):
    title, slug = "Missing credentials", "missing-credentials"


class InvalidCredentials(Unauthorized):
    title, slug = "Invalid credentials", "invalid-credentials"


class InvalidSignature(Unauthorized):
    title, slug = "Invalid signature", "invalid-signature"


class StaleTimestamp(Unauthorized):
    """A signed request whose timestamp is outside the tolerance (a replay, or a skewed clock)."""

    title, slug = "Timestamp outside tolerance", "stale-timestamp"


class Forbidden(GatewayError, PermissionError):
    """A valid token without the scope or team the request needs."""

    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(GatewayError, LookupError):
    """No such resource, or one the caller's team may not see (the two are not told apart)."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(GatewayError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(GatewayError):
    """`If-Match` named a version that is not (or no longer) the current one."""

    status, title, slug = 412, "Precondition failed", "precondition-failed"


class Unprocessable(GatewayError, ValueError):
    """Well-formed JSON that does not validate; `errors` says where and why."""

    status, title, slug = 422, "Validation failed", "validation-failed"


#: Why a request was answered 503: the label of `hookline_gateway_unavailable_total`.
UnavailableCause = Literal[
    "kafka_unavailable",  # no producer connected
    "kafka_unacked",  # Kafka did not acknowledge (or take a definition write) in time
    "temporal_unavailable",  # no client, no answer in time, or a transient error
    "definitions_not_loaded",  # the API is still reading the definitions topic
    "events_not_loaded",  # the API is still reading the decisions topic (its event index)
    "slow_body",  # a body too slow, from a sender that retries only 5xx
    "unclassified",  # raised without a cause
]


class Unavailable(GatewayError):
    """A dependency (Kafka, Temporal) cannot serve the request now: retry (503 + Retry-After).
    `cause` says which, for the count of 503s by cause."""

    status, title, slug = 503, "Service unavailable", "unavailable"
    cause: UnavailableCause = "unclassified"

    def __init__(self, detail: str, *, retry_after_s: int, cause: UnavailableCause | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})
        if cause is not None:
            self.cause = cause


class SlowBody(Unavailable):
    """A body that did not arrive in time, from a sender that retries only 5xx (Alertmanager drops
    a 408 like any 4xx): 503 so it retries; the connection is closed."""

    close_connection = True
    cause: UnavailableCause = "slow_body"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    instance: str,
    errors: list[SchemaError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = [{"location": e.location, "message": e.message} for e in errors]
    return web.Response(
        status=status, body=orjson.dumps(body), headers=headers, content_type="application/problem+json"
    )


#: Where the middleware counts each 503 by its cause, if the app has it (the gateway's metrics).
UNAVAILABLE_COUNTER = web.AppKey("unavailable_counter", Counter)

_HTTP_SLUGS = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}


async def _closing(request: web.Request, response: web.Response) -> web.Response:
    """Send `response`, then close the connection instead of reading the rest of the body."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # no lingering read of what the client still sends
    return response


@web.middleware
async def problem_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    return await answer_problems(request, handler, request.app.get(UNAVAILABLE_COUNTER))


async def answer_problems(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    unavailable: Counter | None = None,
) -> web.StreamResponse:
    """`handler`'s answer, or the problem its exception means; each 503 counted by its cause in
    `unavailable`. The middleware's work, and that of the webhooks' direct dispatch
    (`gateway.app.dispatch_hooks_directly`), which does not go through the middleware."""
    try:
        return await handler(request)
    except GatewayError as exc:
        if isinstance(exc, Unavailable) and unavailable is not None:
            unavailable.labels(exc.cause).inc()
        response = problem_response(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.slug,
            instance=request.path,
            errors=exc.errors,
            headers=exc.headers,
            extensions=exc.extensions,
        )
        return await _closing(request, response) if exc.close_connection else response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return problem_response(
            exc.status,
            exc.reason,
            exc.text or exc.reason,
            slug=_HTTP_SLUGS.get(exc.status, str(exc.status)),
            instance=request.path,
            headers=headers,
        )
    except Exception:
        # Bad input must never get here; if something does, the client still gets JSON. The log
        # line names the method and path only: headers (tokens) and bodies stay out of it.
        log.exception("unhandled error", method=request.method, path=request.path)
        return problem_response(
            500, "Internal error", "the server failed to handle this request", slug="internal", instance=request.path
        )

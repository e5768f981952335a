"""The webhook ingress: `/hooks/{source}`. Per request, in this order: size, credentials,
rate limit, the body (bounded in time), signature, parse, produce; 202 only after Kafka's ack.
For signed sources the rate limit comes after the signature."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from gateway.answers import WholeAnswer
from gateway.errors import GatewayError, PayloadTooLarge, RequestTimeout, SlowBody, TooManyRequests
from gateway.metrics import GatewayMetrics
from gateway.publisher import EventPublisher
from gateway.sources import Source
from hookline.logging import get_logger

__all__ = ["Handler", "accepted", "accepted_one", "bounded", "counted", "hook_handler", "read_body", "take_body"]

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


#: Where `GET /api/v1/events/{id}` tells what became of an accepted event.
EVENT_PAGE = "/api/v1/events/"


def accepted(event_ids: list[str], **extra: object) -> web.Response:
    """202, with each event's id and the page that follows it (`links`, by id)."""
    links = {event_id: EVENT_PAGE + event_id for event_id in event_ids}
    return WholeAnswer(orjson.dumps({"accepted": len(event_ids), "event_ids": event_ids, "links": links, **extra}))


def accepted_one(event_id: str) -> web.Response:
    """`accepted([event_id])`, the answer to nearly every webhook, without its two
    comprehensions (and the list the caller builds for it): some 2,400 instructions a request
    less (callgrind, bench/ingest_instructions.py)."""
    return WholeAnswer(
        orjson.dumps({"accepted": 1, "event_ids": [event_id], "links": {event_id: EVENT_PAGE + event_id}})
    )


def check_size(request: web.Request, max_body_bytes: int) -> None:
    length = request.content_length  # a property that parses the header each time
    if length is not None and length > max_body_bytes:
        raise PayloadTooLarge(f"body of {length} bytes exceeds the limit of {max_body_bytes} bytes")


async def read_body(request: web.Request, timeout_s: float, *, retry_after_s: int | None = None) -> bytes:
    """The whole body, or 408 (and the connection closed) if it takes longer than `timeout_s`;
    503 with `retry_after_s` instead, if given, for senders that retry only 5xx. read() enforces
    client_max_size on chunked bodies too (413, never a silent truncation)."""
    try:
        if request.content.is_eof():  # already received whole, as small webhooks almost always are: no timer
            return await request.read()
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        # A chunked body (a length in the headers is refused before): told as `take_body` tells it.
        raise PayloadTooLarge(f"body exceeds the limit of {request.client_max_size} bytes") from None
    except TimeoutError:
        log.info("slow client cut off", path=request.path, timeout_s=timeout_s)
        detail = (
            f"the request body did not arrive within {timeout_s:g}s; send it at once, or raise gateway.read_timeout_s"
        )
        if retry_after_s is not None:
            raise SlowBody(detail, retry_after_s=retry_after_s) from None
        raise RequestTimeout(detail) from None


async def take_body(
    request: web.Request, max_body_bytes: int, timeout_s: float, *, retry_after_s: int | None = None
) -> bytes:
    """`read_body` for a handler that reads its body once and alone: a body already received
    whole is taken from the stream as it is (`StreamReader.read_nowait`), without `read()`'s loop
    of chunks. Either way it is checked against `max_body_bytes` here (a chunked body has no
    length to refuse it by before). `request.read()` does not see a body taken so; a body that
    something read before (`total_bytes` counts what arrived) is read as `read()` kept it."""
    content = request.content
    if not content.is_eof():
        body = await read_body(request, timeout_s, retry_after_s=retry_after_s)
    elif len(body := content.read_nowait()) != content.total_bytes:
        body = await request.read()
    if len(body) > max_body_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes exceeds the limit of {max_body_bytes} bytes")
    return body


def bounded(handler: Handler, read_timeout_s: float) -> Handler:
    """`handler` with its request's body (if any) read within `read_timeout_s` first (408 and the
    connection closed). Per route, not a middleware: /hooks and /ticks read theirs after their
    own cheaper checks, and a middleware on every request cost the ingest path ~15 %."""

    async def read_first(request: web.Request) -> web.Response:
        if request.body_exists:
            await read_body(request, read_timeout_s)
        return await handler(request)

    return read_first


def counted(handler: Handler, metrics: GatewayMetrics, source: str) -> Handler:
    """Count every answer of `handler` by status under `source`."""
    requests = metrics.requests_for(source)

    async def count(request: web.Request) -> web.Response:
        try:
            response = await handler(request)
        except (GatewayError, web.HTTPException) as exc:
            requests(exc.status).inc()
            raise
        requests(response.status).inc()
        return response

    return count


def hook_handler(
    source: Source,
    publisher: EventPublisher,
    metrics: GatewayMetrics,
    max_body_bytes: int,
    read_timeout_s: float,
    retry_after_s: int = 5,
) -> Handler:
    """The POST handler of one configured source, on a static route of its own."""
    guard, limiter = source.guard, source.limiter
    slow_retry_after_s = retry_after_s if source.retries_only_5xx else None
    # A request counts against the limit once it is authenticated: for a signed source that is
    # after the body is read, or forged signatures would use up the real sender's tokens.
    limit_before_body = limiter is not None and not guard.signed

    def limit() -> None:
        if limiter is not None and (wait_s := limiter.take()):
            raise TooManyRequests(f"source {source.name!r} is over its rate limit", retry_after_s=wait_s)

    requests = metrics.requests_for(source.name)
    answered_202 = requests(202)

    # Counted here rather than wrapped in `counted`: one coroutine fewer per request.
    async def receive(request: web.Request) -> web.Response:
        try:
            check_size(request, max_body_bytes)
            headers = request.headers
            if not guard.open:
                guard.check_headers(headers)
            if limit_before_body:
                limit()
            body = await take_body(request, max_body_bytes, read_timeout_s, retry_after_s=slow_retry_after_s)
            if not guard.open:
                guard.check_body(headers, body)
            if guard.signed:
                limit()
            events = source.parse(body, headers)
            await publisher.publish(events, source=source.name)
        except (GatewayError, web.HTTPException) as exc:
            requests(exc.status).inc()
            raise
        answered_202.inc()
        # Not logged: GET /api/v1/events/{id} answers for each accepted event (and a log call,
        # even below its level, costs a lookup through structlog's proxy per request).
        return accepted_one(events[0].id) if len(events) == 1 else accepted([e.id for e in events])

    return receive

"""The gateway application: webhook ingress, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.errors import PayloadTooLarge, UnknownSource, problem_middleware
from gateway.metrics import GatewayMetrics
from gateway.publisher import EventPublisher
from gateway.settings import GatewaySettings
from gateway.sources import Source, build_sources
from hookline.logging import get_logger

__all__ = ["METRICS", "PUBLISHER", "create_app"]

log = get_logger(__name__)

SETTINGS = web.AppKey("settings", GatewaySettings)
METRICS = web.AppKey("metrics", GatewayMetrics)
PUBLISHER = web.AppKey("publisher", EventPublisher)
SOURCES = web.AppKey("sources", dict[str, Source])


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def receive_hook(request: web.Request) -> web.Response:
    name = request.match_info["source"]
    source = request.app[SOURCES].get(name)
    if source is None:
        raise UnknownSource(f"no source named {name!r} is configured; known: {', '.join(sorted(request.app[SOURCES]))}")
    limit = request.app[SETTINGS].gateway.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds the limit of {limit} bytes")
    # read() enforces client_max_size on chunked bodies too (413, never a silent truncation).
    body = await request.read()
    events = source.parse(body, request.headers.get("Content-Type", ""))
    await request.app[PUBLISHER].publish(events, source=name)
    log.debug("accepted", source=name, event_ids=[e.id for e in events])
    return _json({"accepted": len(events), "event_ids": [e.id for e in events]}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if await request.app[PUBLISHER].ready():
        return _json({"status": "ready", "kafka": "connected"})
    return _json({"status": "not ready", "kafka": "not connected"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def count_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    source = request.match_info.get("source")
    if source is not None:
        request.app[METRICS].requests.labels(source, str(response.status)).inc()
    return response


def create_app(settings: GatewaySettings, *, publisher: EventPublisher | None = None) -> web.Application:
    """Build the gateway; the producer is opened and closed with the app."""
    options = settings.gateway
    # count_requests wraps problem_middleware, so it sees the final status of error answers too.
    app = web.Application(client_max_size=options.max_body_bytes, middlewares=[count_requests, problem_middleware])
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[SOURCES] = build_sources(options.sources)
    app[PUBLISHER] = publisher or EventPublisher(
        settings.kafka,
        timeout_s=options.produce_timeout_s,
        retry_after_s=options.retry_after_s,
        metrics=app[METRICS],
    )

    async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
        await app[PUBLISHER].start()
        yield
        await app[PUBLISHER].stop()

    app.cleanup_ctx.append(publisher_ctx)
    app.router.add_post("/hooks/{source}", receive_hook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app

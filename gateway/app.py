"""The gateway application: webhook ingress, the REST API, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.hdrs import EXPECT

from gateway.api import add_api_routes
from gateway.api.lanes import watch_lanes
from gateway.api.state import API
from gateway.errors import UNAVAILABLE_COUNTER, UnknownSource, answer_problems, problem_middleware
from gateway.ingress import Handler, bounded, hook_handler
from gateway.metrics import GatewayMetrics
from gateway.publisher import EventPublisher
from gateway.settings import EVENT_HEADROOM_BYTES, KAFKA_MESSAGE_BYTES, GatewaySettings
from gateway.sources import Source, build_sources
from gateway.temporal_metrics import watch_temporal
from gateway.ticks import add_tick_routes
from gateway.ui import add_console_routes
from hookline.health import HealthRoutes
from hookline.logging import get_logger
from hookline.metrics import metrics_handler
from schemas.agents import AgentCatalog

__all__ = ["METRICS", "PUBLISHER", "create_app"]

log = get_logger(__name__)

SETTINGS = web.AppKey("settings", GatewaySettings)
METRICS = web.AppKey("metrics", GatewayMetrics)
PUBLISHER = web.AppKey("publisher", EventPublisher)
SOURCES = web.AppKey("sources", dict[str, Source])


async def unknown_source(request: web.Request) -> web.Response:
    # The configured names go to the log, not to a caller who may not be allowed to know them.
    name = request.match_info["source"]
    log.info("request for an unknown source", source=name[:100], known=sorted(request.app[SOURCES].keys()))
    raise UnknownSource(f"no source named {name[:100]!r} is configured (see gateway.sources)")


def create_app(
    settings: GatewaySettings, *, publisher: EventPublisher | None = None, agents: AgentCatalog | None = None
) -> web.Application:
    """Build the gateway; the producer and the API's clients are opened and closed with the app.
    `agents` replaces the catalog read from `settings.agents_file`."""
    options = settings.gateway
    app = web.Application(
        client_max_size=options.max_body_bytes,
        middlewares=[problem_middleware],
        # aiohttp closes a connection whose request has not fully arrived when its keep-alive
        # timer fires, and that timer starts with the connection (or the previous answer) and
        # does not move as bytes trickle in: it is the bound on slow request lines and headers.
        handler_args={"keepalive_timeout": options.header_timeout_s},
    )
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[UNAVAILABLE_COUNTER] = app[METRICS].unavailable
    app[SOURCES] = build_sources(options.sources)
    app[PUBLISHER] = publisher or EventPublisher(
        settings.kafka,
        timeout_s=options.produce_timeout_s,
        transactional_producers=options.transactional_producers,
        instance_id=options.instance_id,
        transaction_timeout_s=options.transaction_timeout_s,
        retry_after_s=options.retry_after_s,
        metrics=app[METRICS],
        # The producer must take any body the gateway takes, with its attributes.
        max_request_bytes=max(KAFKA_MESSAGE_BYTES, options.max_body_bytes + EVENT_HEADROOM_BYTES),
    )

    async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
        await app[PUBLISHER].start()
        yield
        await app[PUBLISHER].stop()

    app.cleanup_ctx.append(publisher_ctx)
    hooks: dict[str, Handler] = {}
    for source in app[SOURCES].values():
        if source.guard.open:
            log.info("source accepts requests without credentials", source=source.name, kind=source.kind)
        handler = hook_handler(
            source,
            app[PUBLISHER],
            app[METRICS],
            options.max_body_bytes,
            options.read_timeout_s,
            options.retry_after_s,
        )
        app.router.add_post(f"/hooks/{source.name}", handler)
        hooks[f"/hooks/{source.name}"] = handler
    app.router.add_post("/hooks/{source}", unknown_source)
    add_tick_routes(
        app,
        options.ticks,
        app[PUBLISHER],
        app[METRICS],
        max_body_bytes=options.max_body_bytes,
        read_timeout_s=options.read_timeout_s,
    )
    publisher = app[PUBLISHER]

    async def kafka_connected() -> str | None:
        return None if await publisher.ready() else "not connected to Kafka"

    # Routes without a body of their own still read (and bound) one a client sends.
    HealthRoutes.of(ready={"kafka": kafka_connected}).add_to(app, lambda h: bounded(h, options.read_timeout_s))
    metrics = app[METRICS]
    app.router.add_get("/metrics", bounded(metrics_handler(lambda: metrics.registry), options.read_timeout_s))
    catalog = agents if agents is not None else AgentCatalog.load(settings.agents_file)
    add_api_routes(app, settings, catalog, app[SOURCES], app[PUBLISHER].recent)
    if settings.api.tokens:  # without tokens there is no API, and nothing to read Temporal with
        watch_temporal(app[METRICS].registry, app[API])
        watch_lanes(app[METRICS].registry, app[API])
    if settings.console.enabled:
        add_console_routes(app, settings)
    dispatch_hooks_directly(app, hooks)
    return app


def dispatch_hooks_directly(app: web.Application, hooks: dict[str, Handler]) -> None:
    """Serve a POST to one of `hooks` (by path) with its handler straight away, its errors answered
    as the problem middleware answers them; any other request as the app serves it.

    aiohttp's dispatch (the route's resolution, its match info, the middleware chain and the
    layer any middleware brings) ran ~250 bytecodes a request, a twelfth of a webhook's cost, for
    routes known at start-up that need none of it: no sub-app, no signal, no `match_info`. It
    stays for everything else, for a request that asks to be told to continue (`Expect`, which
    the app's resolution answers), and for all requests when another middleware is in the app
    (tracing's aiohttp instrumentation adds one that must see each request).

    aiohttp has no public seam here: the app's request handler (`Application._handle`, which
    `AppRunner` hands to its server when it starts) is replaced on this app.
    """
    if list(app.middlewares) != [problem_middleware]:
        return
    handle = app._handle
    unavailable = app[UNAVAILABLE_COUNTER]

    async def dispatch(request: web.Request) -> web.StreamResponse:
        # The path as the router matches it: `%2F` stays encoded (`/hooks%2Fx` is no hook).
        path = request.rel_url.path_safe
        if request.method == "POST" and (hook := hooks.get(path)) is not None and EXPECT not in request.headers:
            return await answer_problems(request, hook, unavailable)
        return await handle(request)

    # Set past aiohttp's debug-mode `__setattr__`, which warns of any attribute it does not know.
    object.__setattr__(app, "_handle", dispatch)

"""`/metrics`: every component's Prometheus registry, served the same way."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hookline.health import Handler

__all__ = ["metrics_handler"]


def metrics_handler(registry: Callable[[], CollectorRegistry | None]) -> Handler:
    """A `/metrics` handler answering `registry()` in Prometheus' text format (an empty body while
    it is None, e.g. before the service it belongs to exists)."""

    async def metrics(request: web.Request) -> web.Response:
        current = registry()
        body = generate_latest(current) if current is not None else b""
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics

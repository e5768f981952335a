"""`/metrics`, the same in every component: Prometheus' text format from the component's registry."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from pytest_aiohttp import AiohttpClient

from hookline.metrics import metrics_handler


async def test_metrics_answers_the_registry_in_prometheus_text_format(aiohttp_client: AiohttpClient) -> None:
    registry = CollectorRegistry()
    Counter("hookline_test_things_total", "Things", registry=registry).inc(3)
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(lambda: registry))
    response = await (await aiohttp_client(app)).get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "hookline_test_things_total 3.0" in await response.text()


async def test_metrics_is_empty_until_the_registry_exists(aiohttp_client: AiohttpClient) -> None:
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(lambda: None))
    response = await (await aiohttp_client(app)).get("/metrics")
    assert (response.status, await response.text()) == (200, "")

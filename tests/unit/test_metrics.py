"""`/metrics`, the same in every component: Prometheus' text format from the component's registry,
with the collectors read when it is scraped read first, bounded and cached."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from pytest_aiohttp import AiohttpClient

from hookline.metrics import Registry, Scraped, metrics_handler


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


class Things(Scraped[int]):
    def families(self, value: int) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("hookline_test_things", "Things", value)]


class Reads:
    """A read that counts its calls and answers (or raises) what it is told to."""

    def __init__(self, *answers: int | Exception, delay_s: float = 0.0) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.delay_s = delay_s

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def scrape(aiohttp_client: AiohttpClient, registry: CollectorRegistry) -> str:
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(lambda: registry))
    return await (await (await aiohttp_client(app)).get("/metrics")).text()


async def test_a_scraped_collector_is_read_when_metrics_is_scraped(aiohttp_client: AiohttpClient) -> None:
    registry = Registry()
    registry.register(Things(Reads(7)))
    assert "hookline_test_things 7.0" in await scrape(aiohttp_client, registry)


async def test_a_read_is_reused_for_its_ttl() -> None:
    reads = Reads(1, 2)
    things = Things(reads, ttl_s=60)
    await things.refresh()
    await things.refresh()
    assert reads.calls == 1
    assert [m.samples[0].value for m in things.collect()] == [1]


async def test_concurrent_scrapes_share_one_read() -> None:
    reads = Reads(1, delay_s=0.05)
    things = Things(reads, ttl_s=60)
    await asyncio.gather(things.refresh(), things.refresh(), things.refresh())
    assert reads.calls == 1


@pytest.mark.parametrize(
    ("reads", "timeout_s"),
    [(Reads(KafkaError("broker gone")), 1.0), (Reads(1, delay_s=5), 0.05)],
    ids=["failed", "too slow"],
)
async def test_a_failed_or_late_read_leaves_its_families_out(reads: Reads, timeout_s: float) -> None:
    things = Things(reads, timeout_s=timeout_s, ttl_s=0)
    await things.refresh()
    assert list(things.collect()) == []


async def test_a_failed_read_drops_the_last_value_and_a_later_read_brings_it_back() -> None:
    things = Things(Reads(1, KafkaError("broker gone"), 3), ttl_s=0)
    seen = []
    for _ in range(3):
        await things.refresh()
        seen.append([m.samples[0].value for m in things.collect()])
    assert seen == [[1], [], [3]]


async def test_an_unregistered_collector_is_no_longer_read() -> None:
    reads = Reads(1)
    things = Things(reads, ttl_s=0)
    registry = Registry()
    registry.register(things)
    registry.unregister(things)
    await registry.refresh()
    assert reads.calls == 0

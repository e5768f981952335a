"""`/metrics`: every component's Prometheus registry, served the same way.

Most metrics are counted where things happen. Some are read from elsewhere when Prometheus
scrapes (a consumer's lag from Kafka, a task queue's backlog from Temporal): those reads await, and
prometheus_client collects synchronously, so they are `Scraped` collectors in a `Registry`, which
the handler refreshes before it answers.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Generic, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from hookline.health import Handler
from hookline.logging import get_logger

__all__ = ["Registry", "Scraped", "metrics_handler"]

log = get_logger(__name__)

T = TypeVar("T")


class Scraped(ABC, Generic[T]):
    """Metric families computed from `read()`, which runs when /metrics is scraped.

    A read is bounded by `timeout_s` and its result reused for `ttl_s`, so scrapes (two
    Prometheus servers, a person with curl) cannot hammer Kafka or Temporal. A read that fails
    or times out leaves these families out of the scrape until a later read succeeds: absent,
    never a stale value or a made-up zero. It is logged when it starts failing and when it
    recovers, not at every scrape of a long outage.
    """

    def __init__(self, read: Callable[[], Awaitable[T]], *, timeout_s: float = 2.0, ttl_s: float = 5.0) -> None:
        self._read = read
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._value: T | None = None
        self._read_at: float | None = None
        self._failing = False
        self._lock = asyncio.Lock()

    @abstractmethod
    def families(self, value: T) -> Iterable[Metric]:
        """The metric families of one successful read."""

    async def refresh(self) -> None:
        """Read again, unless the last read is younger than `ttl_s`."""
        async with self._lock:  # concurrent scrapes wait for one read instead of each making one
            if self._read_at is not None and time.monotonic() - self._read_at < self._ttl_s:
                return
            try:
                async with asyncio.timeout(self._timeout_s):
                    self._value = await self._read()
            except Exception as exc:  # whatever the dependency says, there is nothing to report
                self._value = None
                if not self._failing:
                    log.warning("metrics not read", collector=type(self).__name__, error=repr(exc))
                self._failing = True
            else:
                if self._failing:
                    log.info("metrics read again", collector=type(self).__name__)
                self._failing = False
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        if self._value is not None:
            yield from self.families(self._value)


class Registry(CollectorRegistry):
    """A registry that knows its `Scraped` collectors, so `/metrics` can refresh them first."""

    def __init__(self) -> None:
        super().__init__()
        self._scraped: list[Scraped[object]] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        if isinstance(collector, Scraped):
            self._scraped.append(collector)

    def unregister(self, collector: Collector) -> None:
        super().unregister(collector)
        if isinstance(collector, Scraped):
            self._scraped.remove(collector)

    async def refresh(self) -> None:
        """Refresh every scraped collector, concurrently: a scrape waits for the slowest one."""
        await asyncio.gather(*(collector.refresh() for collector in self._scraped))


def metrics_handler(registry: Callable[[], CollectorRegistry | None]) -> Handler:
    """A `/metrics` handler answering `registry()` in Prometheus' text format (an empty body while
    it is None, e.g. before the service it belongs to exists)."""

    async def metrics(request: web.Request) -> web.Response:
        current = registry()
        if isinstance(current, Registry):
            await current.refresh()
        body = generate_latest(current) if current is not None else b""
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics

"""`/metrics`: every component's Prometheus registry, served the same way.

Most metrics are counted where things happen. Some are read from elsewhere when Prometheus
scrapes (a consumer's lag from Kafka, a task queue's backlog from Temporal): those reads await, and
prometheus_client collects synchronously, so they are `Scraped` collectors in a `Registry`, which
the handler refreshes before it answers.
"""

from __future__ import annotations

import asyncio
import math
import time
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hookline.health import Handler
from hookline.logging import get_logger

__all__ = ["Count", "LoopCounter", "LoopHistogram", "Observations", "Registry", "Scraped", "metrics_handler"]

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


class Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class Observations:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf's own
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less or equal": the first bound >= value. NaN, which is in no
        # bucket (prometheus_client counts it nowhere), is not counted.
        if value == value:
            self.counts[bisect_left(self.bounds, value)] += 1
            self.sum += value


class _LoopMetric:
    """Labelled children made on first use and kept; a collector of its registry."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        registry.register(self)

    def _exposed_at_zero(self, make: Callable[[], object]) -> None:
        """Without labels, the one child from the start: exposed at zero before the first count,
        as prometheus_client does (a rate over a series that is absent until it moves says nothing)."""
        if not self._labelnames:
            self._children[()] = make()

    def _child(self, values: tuple[object, ...], make: Callable[[], T]) -> T:
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name} takes the labels {self._labelnames}, got {values!r}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = make()
        return child  # type: ignore[return-value]

    def _unlabelled(self) -> object:
        """The child of a metric without labels, made with it."""
        child = self._children.get(())
        if child is None:
            raise ValueError(f"{self._name} takes the labels {self._labelnames}: count through labels()")
        return child

    def describe(self) -> Iterator[Metric]:
        yield from self._families(empty=True)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        raise NotImplementedError


class LoopCounter(_LoopMetric):
    """A labelled counter for code that runs on one event loop thread only: a child's `inc()` is
    an addition. prometheus_client's children take a lock on every `inc()` (and a histogram's
    `observe()` walks its buckets in Python): on the gateway's ingest path its three metrics per
    request cost more bytecode than building the event. Exposed like a prometheus_client Counter,
    without the `_created` samples."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry)
        self._exposed_at_zero(Count)

    def labels(self, *values: object) -> Count:
        return self._child(values, Count)

    def inc(self, amount: float = 1.0) -> None:
        """Count on a counter without labels."""
        self._unlabelled().inc(amount)  # type: ignore[attr-defined]

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        if not empty:
            for values, child in list(self._children.items()):
                family.add_metric(values, child.value)  # type: ignore[attr-defined]
        yield family


class LoopHistogram(_LoopMetric):
    """A labelled histogram for code that runs on one event loop thread only (see `LoopCounter`):
    `observe()` is a C bisect and two additions."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        *,
        buckets: Sequence[float],
    ) -> None:
        bounds = tuple(float(b) for b in buckets if b != math.inf)
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"buckets must be finite bounds in increasing order, got {buckets!r}")
        self._bounds = bounds
        super().__init__(name, documentation, labelnames, registry)
        self._exposed_at_zero(lambda: Observations(bounds))

    def labels(self, *values: object) -> Observations:
        return self._child(values, lambda: Observations(self._bounds))

    def observe(self, value: float) -> None:
        """Observe on a histogram without labels."""
        self._unlabelled().observe(value)  # type: ignore[attr-defined]

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        if not empty:
            for values, child in list(self._children.items()):
                counts: list[int] = child.counts  # type: ignore[attr-defined]
                buckets, total = [], 0
                for bound, count in zip((*self._bounds, math.inf), counts, strict=True):
                    total += count
                    buckets.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
                family.add_metric(values, buckets, child.sum)  # type: ignore[attr-defined]
        yield family


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

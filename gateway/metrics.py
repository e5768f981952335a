"""Prometheus metrics of the gateway, in a registry of its own (no process globals). The ones read
from Temporal when scraped are in `gateway.temporal_metrics`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from prometheus_client import Counter

from hookline.metrics import Count, LoopCounter, LoopHistogram, Observations, Registry

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = Registry()
        # Counted on every webhook request, on the event loop: loop-local metrics, no locks.
        self.requests = LoopCounter(
            "hookline_gateway_requests_total",
            "Webhook requests by source and status",
            ["source", "status"],
            self.registry,
        )
        self.events_produced = LoopCounter(
            "hookline_gateway_events_produced_total", "Events acknowledged by Kafka", ["source"], self.registry
        )
        self.produce_failures = LoopCounter(
            "hookline_gateway_produce_failures_total",
            "Requests answered 503 because Kafka did not ack",
            ["source"],
            self.registry,
        )
        self.unavailable = Counter(
            "hookline_gateway_unavailable_total",
            "Requests answered 503 (retry later), by cause: kafka_unavailable, kafka_unacked, "
            "temporal_unavailable, definitions_not_loaded, events_not_loaded, slow_body",
            ["cause"],
            registry=self.registry,
        )
        self.produce_latency = LoopHistogram(
            "hookline_gateway_produce_latency_seconds",
            "Time from first send to the last ack of a request",
            ["source"],
            self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    @cache  # noqa: B019 - one entry per configured source, for the app's lifetime
    def produce_for(self, source: str) -> tuple[Observations, Count, Count]:
        """Latency, events produced and failures of `source`, children bound once."""
        return (
            self.produce_latency.labels(source),
            self.events_produced.labels(source),
            self.produce_failures.labels(source),
        )

    def requests_for(self, source: str) -> Callable[[int], Count]:
        """The request counter of `source` by status, children bound once (labels() is not free)."""

        @cache
        def by_status(status: int) -> Count:
            return self.requests.labels(source, str(status))

        return by_status

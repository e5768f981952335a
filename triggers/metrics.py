"""Prometheus metrics of the triggers service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["TriggersMetrics"]


class TriggersMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_consumed = Counter(
            "hookline_triggers_events_consumed_total", "Records read from the events topic", registry=self.registry
        )
        self.workflows_started = Counter(
            "hookline_triggers_workflows_started_total",
            "Events delivered to workflows by outcome: started, existing, signalled, cancelled, already ended, ignored",
            ["definition", "outcome"],
            registry=self.registry,
        )
        self.temporal_retries = Counter(
            "hookline_triggers_temporal_retries_total",
            "Requests to Temporal retried because it was unreachable",
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "hookline_triggers_dead_lettered_total", "Records sent to the DLQ", registry=self.registry
        )
        self.schedule_failures = Counter(
            "hookline_triggers_schedule_failures_total",
            "Ticks of a schedule that failed (the schedule is retried with backoff; the others tick on)",
            ["definition"],
            registry=self.registry,
        )
        self.start_latency = Histogram(
            "hookline_triggers_start_latency_seconds",
            "Time to start (or find) one workflow",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

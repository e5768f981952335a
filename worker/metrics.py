"""Prometheus metrics of the worker: each step attempt's duration and outcome, by pool and runner,
and what the flow-control lanes it runs decide.

Steps are counted in the step activity, around the runner: the interpreter cannot count (workflow
code is replayed, and would count again); the runs by definition and status are read from Temporal
by the gateway (`gateway.temporal_metrics`). The lanes count their decisions only as they make
them, never while Temporal replays their history (`LaneMetrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Literal

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

from hookline.metrics import Registry

__all__ = ["LANES", "LaneDecision", "LaneMetrics", "StepOutcome", "WorkerMetrics"]

StepOutcome = Literal["succeeded", "failed", "cancelled"]
#: What a lane did with an event: it waits for its own run (`queued`), went into a collected run
#: (`batched`, `debounced`), started nothing (`skipped`), was delivered again (`duplicate`); later
#: a waiting one may be `replaced` or `dropped` (resolved), a running one `cancelled`.
LaneDecision = Literal["queued", "batched", "debounced", "skipped", "duplicate", "replaced", "dropped", "cancelled"]


class LaneMetrics:
    """The lanes' decisions by definition, the runs they start by kind, and how long each run's
    oldest event waited in its lane, counted by the worker whose lane decides.

    One per process (`LANES`), as Temporal's own `workflow.metric_meter()` is: a workflow cannot be
    handed an object, and the lane's module reaches this one through the sandbox's pass-through.
    The lane calls it only outside replay, so a history read again (a worker that took over a lane,
    an evicted cache) counts nothing twice; a decision is lost only with a process that dies
    before it is scraped, as any counter's is. Gauges of what waits and runs now are not kept here:
    they are read from the lanes' own state (`gateway.api.lanes.watch_lanes`), which a crash cannot
    make wrong.
    """

    def __init__(self) -> None:
        self.decisions = Counter(
            "hookline_lane_decisions_total",
            "Events a flow-control lane took, by what it did with them: queued, batched, debounced, skipped, "
            "duplicate; replaced or dropped (resolved) while waiting, cancelled while running (cancel_running)",
            ["definition", "decision"],
            registry=None,
        )
        self.runs = Counter(
            "hookline_lane_runs_started_total",
            "Runs a flow-control lane started, by kind: single (one event), batch, debounce",
            ["definition", "kind"],
            registry=None,
        )
        self.queue_wait = Histogram(
            "hookline_lane_queue_wait_seconds",
            "From the lane taking an event to the start of its run (a collected run: its first event)",
            ["definition"],
            registry=None,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
        )

    def decided(self, definition: str, decision: LaneDecision, events: int = 1) -> None:
        if events:
            self.decisions.labels(definition, decision).inc(events)

    def started(self, definition: str, kind: str, waited_s: float) -> None:
        self.runs.labels(definition, kind).inc()
        self.queue_wait.labels(definition).observe(max(0.0, waited_s))

    def collect(self) -> Iterator[Metric]:
        for metric in (self.decisions, self.runs, self.queue_wait):
            yield from metric.collect()


#: The process's lane metrics (see `LaneMetrics`); every `WorkerMetrics` registry serves them.
LANES = LaneMetrics()


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = Registry()
        self.step_duration = Histogram(
            "hookline_worker_step_duration_seconds",
            "Time a runner took for one attempt of a step, by pool, runner kind and outcome "
            "(succeeded, failed, cancelled)",
            ["pool", "runner", "outcome"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
        )
        self.registry.register(LANES)

    @contextlib.contextmanager
    def step(self, pool: str, runner: str) -> Iterator[None]:
        """Time the block as one attempt of a step: succeeded if it returns, cancelled if it is
        cancelled (the run was cancelled, or the worker is shutting down), failed otherwise."""
        started = time.perf_counter()
        outcome: StepOutcome = "failed"
        try:
            yield
            outcome = "succeeded"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self.step_duration.labels(pool, runner, outcome).observe(time.perf_counter() - started)

"""Prometheus metrics of the worker: each step attempt's duration and outcome, by pool and runner.

Counted in the step activity, around the runner: the interpreter cannot count (workflow code
is replayed, and would count again); the runs by definition and status are read from Temporal
by the gateway (`gateway.temporal_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Literal

from prometheus_client import Histogram

from hookline.metrics import Registry

__all__ = ["StepOutcome", "WorkerMetrics"]

StepOutcome = Literal["succeeded", "failed", "cancelled"]


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

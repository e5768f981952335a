"""The worker's step metrics: each attempt's duration, by pool, runner kind and outcome."""

from __future__ import annotations

import asyncio

import pytest

from worker.errors import StepFailed
from worker.metrics import WorkerMetrics


async def attempt(metrics: WorkerMetrics, error: BaseException | None) -> None:
    with metrics.step("linux", "shell"):
        await asyncio.sleep(0)
        if error is not None:
            raise error


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "succeeded"),
        (StepFailed("exit code 2", retryable=True, kind="ExitCode"), "failed"),
        (asyncio.CancelledError(), "cancelled"),
    ],
)
async def test_a_step_attempt_is_timed_under_its_outcome(error: BaseException | None, outcome: str) -> None:
    metrics = WorkerMetrics()
    if error is None:
        await attempt(metrics, error)
    else:
        with pytest.raises(type(error)):
            await attempt(metrics, error)
    labels = {"pool": "linux", "runner": "shell", "outcome": outcome}
    assert metrics.registry.get_sample_value("hookline_worker_step_duration_seconds_count", labels) == 1
    total = metrics.registry.get_sample_value("hookline_worker_step_duration_seconds_sum", labels)
    assert total is not None and total >= 0

"""`hookline run`'s supervisor with a real `hookline worker`: a frozen worker (alive, its loop not
turning, as when a step's fork wedged it) is noticed through its liveness probe and replaced, and
the replacement serves the pools again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from hookline.settings import TemporalSettings
from hookline.stack import free_port
from hookline.supervisor import Child, Supervisor
from tests.eventually import eventually

pytestmark = pytest.mark.integration


async def ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@pytest.mark.long
async def test_a_frozen_worker_is_replaced_by_the_supervisor(temporal_settings: TemporalSettings) -> None:
    port = free_port()
    env = dict(
        os.environ,
        HOOKLINE_TEMPORAL__ADDRESS=temporal_settings.address,
        HOOKLINE_TEMPORAL__TASK_QUEUE=temporal_settings.task_queue,
        HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX=temporal_settings.runner_queue_prefix,
        HOOKLINE_WORKER__PORT=str(port),
        HOOKLINE_LOG__LEVEL="warning",
    )
    worker = Child("worker", [sys.executable, "-m", "hookline.cli", "worker"], env, f"http://127.0.0.1:{port}/healthz")
    lines: list[str] = []
    # A frozen worker never answers: each failed probe lasts the probe timeout, three of them in a row.
    supervisor = Supervisor(
        [worker], probe_every_s=0.5, probe_timeout_s=1.0, unhealthy_after=3, stop_grace_s=2.0, echo=lines.append
    )
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    try:
        # Ready, and seen healthy by the supervisor (until then it gives a new child time).
        async def healthy() -> bool:
            return worker.answered and await ready(f"http://127.0.0.1:{port}/readyz")

        await eventually(healthy, lambda: f"the worker to be ready: {lines}", timeout=60, interval=0.2)
        frozen = worker.pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)

        async def replaced() -> bool:
            return worker.pid != frozen and await ready(f"http://127.0.0.1:{port}/readyz")

        await eventually(replaced, lambda: f"the frozen worker to be replaced: {lines}", timeout=60, interval=0.2)
        assert lines and lines[0].startswith("worker failed its liveness probe 3 times in a row (no answer")
        with pytest.raises(ProcessLookupError):
            os.kill(frozen, 0)
    finally:
        stop.set()
        assert await running == 0

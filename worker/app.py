"""Building the Temporal workers: the interpreter's task queue and one per runner pool."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from hookline.logging import get_logger
from schemas.agents import AgentCatalog
from worker.activities import StepActivities
from worker.runners import Runner, ShellRunner
from worker.settings import WorkerSettings
from worker.workflow import HooklineRun

__all__ = ["build_workers", "serve"]

log = get_logger(__name__)

# Variables a step inherits from the worker's environment; everything else must be set per agent.
_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TZ")


def build_runners(settings: WorkerSettings) -> dict[str, Runner]:
    base_env = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV}
    available: dict[str, Runner] = {
        "shell": ShellRunner(output_cap_bytes=settings.worker.output_cap_bytes, base_env=base_env),
    }
    unknown = [name for name in settings.worker.runners if name not in available]
    if unknown:
        raise ValueError(f"unknown runner(s) {', '.join(unknown)}; available: {', '.join(sorted(available))}")
    return available


def build_workers(settings: WorkerSettings, client: Client, agents: AgentCatalog | None = None) -> list[Worker]:
    """One worker for the workflow task queue (if enabled) and one per served runner pool."""
    agents = agents if agents is not None else AgentCatalog.load(settings.agents_file)
    runners = build_runners(settings)
    activities = StepActivities(agents, runners, inline_runners=frozenset(settings.worker.inline_runners))
    options = settings.worker
    shutdown = timedelta(seconds=options.graceful_shutdown_s)
    workers: list[Worker] = []
    if options.workflows:
        workers.append(
            Worker(
                client,
                task_queue=settings.temporal.task_queue,
                workflows=[HooklineRun],
                graceful_shutdown_timeout=shutdown,
            )
        )
    pools = sorted({a.pool_name for a in agents.agents.values() if a.runner in options.runners} | set(options.runners))
    for pool in pools:
        workers.append(
            Worker(
                client,
                task_queue=settings.temporal.runner_queue(pool),
                activities=[activities.run_step],
                max_concurrent_activities=options.max_concurrent_activities,
                # Cancellation reaches a step with its next heartbeat; send them promptly.
                max_heartbeat_throttle_interval=timedelta(seconds=1),
                graceful_shutdown_timeout=shutdown,
            )
        )
    return workers


async def serve(settings: WorkerSettings, client: Client) -> None:
    """Run every worker until SIGTERM/SIGINT, then shut down gracefully."""
    workers = build_workers(settings, client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        log.info("worker running", task_queues=[w.task_queue for w in workers])
        await stop.wait()
        log.info("worker stopping")

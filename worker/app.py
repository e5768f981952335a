"""Building the Temporal workers: the interpreter's task queue and one per runner pool."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import FixedSizeSlotSupplier, UnsandboxedWorkflowRunner, Worker, WorkerTuner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hookline.health import HealthRoutes, serve_health
from hookline.lifecycle import stop_on_signals, unless_stopped
from hookline.logging import get_logger
from hookline.metrics import metrics_handler
from hookline.pools import pools_of
from hookline.slots import WorkflowTaskSlots
from schemas.agents import AgentCatalog
from worker.activities import StepActivities
from worker.errors import PoolNotServed, RegistryError, StepFailed
from worker.lane import HooklineLane
from worker.metrics import LANES, WorkerMetrics
from worker.runners import Runner, RunnerContext, RunnerRegistry
from worker.secrets import Secrets
from worker.settings import WorkerOptions, WorkerSettings
from worker.waitbox import HooklineWaits
from worker.workflow import HooklineRun

__all__ = [
    "build_runners",
    "build_workers",
    "check_local_pools",
    "check_served_pools",
    "health_app",
    "local_kinds",
    "running_interpreter",
    "running_workers",
    "serve",
    "served_pools",
]

log = get_logger(__name__)


def build_runners(
    settings: WorkerSettings,
    registry: RunnerRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Runner[Any]]:
    """One runner per kind this worker serves; raises ValueError (`RegistryError` for an unknown
    kind or settings for a kind that is not registered) naming the problem."""
    registry = registry if registry is not None else RunnerRegistry.discover()
    options = settings.worker
    stray = sorted(set(options.runner_settings) - set(registry.names))
    if stray:
        raise RegistryError(
            f"worker.runner_settings names unknown runner(s) {', '.join(stray)}; available: {', '.join(registry.names)}"
        )
    environ = os.environ if environ is None else environ
    inherited = {k: v for k, v in environ.items() if k in options.inherit_env}
    runners: dict[str, Runner[Any]] = {}
    for name in dict.fromkeys(options.runners):
        context = RunnerContext(
            output_cap_bytes=options.output_cap_bytes,
            settings=options.runner_settings.get(name, {}),
            inherited_env=inherited,
        )
        try:
            runners[name] = registry.create(name, context)
        except StepFailed as exc:  # the runner refused its settings section
            raise ValueError(str(exc)) from None
    return runners


def served_pools(agents: AgentCatalog, kinds: list[str]) -> list[str]:
    """The pools a worker serving `kinds` polls: each kind's own pool and every pool its agents name."""
    return sorted({a.pool_name for a in agents.agents.values() if a.runner in kinds} | set(kinds))


def check_served_pools(agents: AgentCatalog, kinds: list[str]) -> None:
    """Raises `PoolNotServed` if a pool the worker would poll has agents of a kind it does not
    serve: it would take their steps from the queue and could only fail them."""
    problems = []
    for pool, used in pools_of(agents).items():
        missing = sorted(set(used) - set(kinds))
        if pool in served_pools(agents, kinds) and missing:
            problems.append(f"pool {pool!r} also has agents of runner kind(s) {', '.join(missing)}")
    if problems:
        raise PoolNotServed(
            f"{'; '.join(problems)}, which this worker does not serve (it serves {', '.join(kinds)}): "
            "serve those kinds too (--runner) or give those agents a pool of their own"
        )


def check_local_pools(agents: AgentCatalog, kinds: list[str], local_pools: list[str]) -> None:
    """Raises `PoolNotServed` if this worker runs the interpreter but does not serve a pool whose
    steps run as local activities (`temporal.local_pools`): they would run here and fail."""
    missing = sorted(set(local_pools) - set(served_pools(agents, kinds)))
    if missing:
        raise PoolNotServed(
            f"temporal.local_pools names pool(s) {', '.join(missing)}, whose steps run in the worker that "
            f"runs the interpreter, but this worker does not serve them (it serves {', '.join(kinds)}): "
            "serve them here (--runner), or set worker.workflows to false, or remove them from local_pools"
        )


def _check_agents(agents: AgentCatalog, runners: Mapping[str, Runner[Any]]) -> None:
    # A bad agent must not stop the pool serving the good ones: its steps fail as Config errors.
    for agent in agents.agents.values():
        runner = runners.get(agent.runner)
        if runner is None:
            continue
        try:
            runner.check(agent)
        except StepFailed as exc:
            log.error("agent misconfigured; its steps will fail", agent=agent.name, error=str(exc))


def build_workers(
    settings: WorkerSettings,
    client: Client,
    agents: AgentCatalog | None = None,
    runners: dict[str, Runner[Any]] | None = None,
    metrics: WorkerMetrics | None = None,
    *,
    pools: bool = True,
    identity: str | None = None,
    slots: WorkflowTaskSlots | None = None,
) -> list[Worker]:
    """One worker for the workflow task queue (if enabled) and, with `pools`, one per served
    runner pool; `identity` names the interpreter's worker in the runs' histories (the SDK's
    default: the client's), `slots` its workflow task slots where another part of the process
    watches them (hookline.slots). Runners built here are closed by nobody: use
    `running_workers` for runners with clients."""
    agents = agents if agents is not None else AgentCatalog.load(settings.agents_file)
    runners = runners if runners is not None else build_runners(settings)
    if pools:
        check_served_pools(agents, list(runners))
    _check_agents(agents, runners)
    activities = StepActivities(
        agents,
        runners,
        inline_runners=frozenset(settings.worker.inline_runners),
        secrets=Secrets(settings.worker.secrets_dir, os.environ),
        metrics=metrics,
    )
    options = settings.worker
    shutdown = timedelta(seconds=options.graceful_shutdown_s)
    workers: list[Worker] = []
    if options.workflows:
        local = settings.temporal.local_pools
        check_local_pools(agents, list(runners), local)
        workers.append(
            Worker(
                client,
                task_queue=settings.temporal.task_queue,
                workflows=[HooklineRun, HooklineLane, HooklineWaits],
                # The steps of `temporal.local_pools` run here as local activities.
                activities=[activities.run_step] if local else [],
                **_interpreter_slots(options, slots),
                **options.workflow_polling(),
                # The sandbox re-imports the workflow's module for every run it starts: about 40 %
                # of the worker's CPU in bench/runs.py. The interpreter is one workflow of ours,
                # deterministic by construction; tests/integration/test_engine.py replays its
                # histories in the sandbox to keep it so.
                workflow_runner=SandboxedWorkflowRunner() if options.workflow_sandbox else UnsandboxedWorkflowRunner(),
                graceful_shutdown_timeout=shutdown,
                identity=identity,
            )
        )
    for pool in served_pools(agents, list(runners)) if pools else []:
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


def _interpreter_slots(options: WorkerOptions, slots: WorkflowTaskSlots | None) -> dict[str, Any]:
    """The interpreter worker's slots, as options of `temporalio.worker.Worker`: its workflow
    tasks' from `slots` where given, and the steps of `temporal.local_pools` it runs at once."""
    if slots is None:
        return {
            "max_concurrent_workflow_tasks": options.max_concurrent_workflow_tasks,
            "max_concurrent_local_activities": options.max_concurrent_activities,
        }
    sdk_default = FixedSizeSlotSupplier(100)  # what the worker has without a tuner
    tuner = WorkerTuner.create_composite(
        workflow_supplier=slots,
        activity_supplier=sdk_default,
        local_activity_supplier=FixedSizeSlotSupplier(options.max_concurrent_activities),
        nexus_supplier=sdk_default,
    )
    return {"tuner": tuner}


@contextlib.asynccontextmanager
async def running_workers(
    settings: WorkerSettings,
    client: Client,
    agents: AgentCatalog | None = None,
    registry: RunnerRegistry | None = None,
    metrics: WorkerMetrics | None = None,
    *,
    pools: bool = True,
    identity: str | None = None,
    slots: WorkflowTaskSlots | None = None,
) -> AsyncIterator[list[Worker]]:
    """The workers running for the block (`build_workers`'s, with `pools` and `identity`); on
    exit they shut down gracefully, then the runners' clients are closed."""
    runners = build_runners(settings, registry)
    async with contextlib.AsyncExitStack() as stack:
        for runner in runners.values():
            stack.push_async_callback(runner.close)
        workers = build_workers(settings, client, agents, runners, metrics, pools=pools, identity=identity, slots=slots)
        for w in workers:
            await stack.enter_async_context(w)
        yield workers


def local_kinds(agents: AgentCatalog, local_pools: list[str], known: list[str]) -> list[str]:
    """The runner kinds that serve `local_pools`: their agents' kinds, and a pool named after a
    kind of `known` (a kind's own pool)."""
    local = set(local_pools)
    return sorted({a.runner for a in agents.agents.values() if a.pool_name in local} | (local & set(known)))


@contextlib.asynccontextmanager
async def running_interpreter(
    settings: WorkerSettings,
    client: Client,
    agents: AgentCatalog,
    *,
    registry: CollectorRegistry | None = None,
    identity: str | None = None,
    slots: WorkflowTaskSlots | None = None,
) -> AsyncIterator[Worker]:
    """The interpreter alone, running for the block, for a process that starts runs and hosts
    them too (`triggers.interpreter`, composed by the CLI): it serves no runner pool, and has
    runners only for the kinds of `temporal.local_pools`, whose steps it runs as local
    activities. Their durations and the lanes' metrics join `registry`; `slots` are its
    workflow task slots, which the starter watches (hookline.slots)."""
    kinds = local_kinds(agents, settings.temporal.local_pools, RunnerRegistry.installed_names())
    options = settings.worker.model_copy(update={"runners": kinds, "workflows": True})
    settings = settings.model_copy(update={"worker": options})
    metrics = WorkerMetrics()
    if registry is not None:
        for collector in (metrics.step_duration, LANES):
            registry.register(collector)
    async with running_workers(
        settings, client, agents, metrics=metrics, pools=False, identity=identity, slots=slots
    ) as workers:
        (interpreter,) = workers
        yield interpreter


def health_app(
    client: Callable[[], Client | None], workers: Callable[[], list[Worker]], metrics: WorkerMetrics
) -> web.Application:
    """/healthz: the loop turns and every Temporal worker still runs; /readyz: Temporal answers;
    /metrics: the steps' durations and outcomes."""

    async def running() -> str | None:
        stopped = [w.task_queue for w in workers() if not w.is_running and not w.is_shutdown]
        return f"worker(s) stopped: {', '.join(stopped)}" if stopped else None

    async def temporal() -> str | None:
        current = client()
        if current is None:
            return "connecting to Temporal"
        if not workers():
            return "starting"
        try:
            await current.service_client.check_health(timeout=timedelta(seconds=1.5))
        except Exception as exc:  # whatever the transport says, Temporal did not answer
            return f"Temporal does not answer: {type(exc).__name__}"
        return None

    app = web.Application()
    HealthRoutes.of(live={"workers": running}, ready={"temporal": temporal}).add_to(app)
    app.router.add_get("/metrics", metrics_handler(lambda: metrics.registry))
    return app


async def serve(settings: WorkerSettings, connect: Callable[[], Awaitable[Client]]) -> None:
    """Serve the health endpoint, connect, and run every worker until SIGTERM/SIGINT, then shut
    down gracefully."""
    stop = stop_on_signals()
    client: Client | None = None
    serving: list[Worker] = []
    options = settings.worker
    metrics = WorkerMetrics()
    async with serve_health(health_app(lambda: client, lambda: serving, metrics), options.host, options.port):
        client = await unless_stopped(connect(), stop)
        if client is None:
            return
        try:
            async with running_workers(settings, client, metrics=metrics) as workers:
                serving.extend(workers)
                log.info("worker running", task_queues=[w.task_queue for w in workers])
                await stop.wait()
                log.info("worker stopping")
        except PoolNotServed as exc:  # raised before any worker polls: a message, not a traceback
            raise SystemExit(f"hookline worker: {exc}") from None

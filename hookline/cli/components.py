"""`hookline gateway | triggers | worker`: run one component in this process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hookline.cli.common import (
    config_option,
    freeze_heap,
    load,
    load_agents,
    log,
    run,
    settings_of,
    temporal_client,
)
from hookline.tracing import shutdown_tracing

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from temporalio.client import Client
    from temporalio.worker import Worker

__all__ = ["gateway", "triggers", "worker"]


@click.command()
@config_option
def gateway(config_file: Path | None) -> None:
    """Webhook ingress, REST API, /healthz /readyz /metrics."""
    from aiohttp import web

    from gateway.app import create_app
    from gateway.settings import GatewaySettings
    from hookline.health import listening

    settings = load(GatewaySettings, config_file, "gateway")
    options = settings.gateway
    agents = load_agents(settings)
    loop = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop = uvloop.new_event_loop()
    log.info("gateway listening", url=f"http://{options.host}:{options.port}")
    app = create_app(settings, agents=agents)
    freeze_heap()
    try:
        with port_setting("gateway"), listening(options.host, options.port):
            web.run_app(
                app,
                host=options.host,
                port=options.port,
                print=None,
                shutdown_timeout=options.produce_timeout_s + 1,
                loop=loop,
                access_log=None,
            )
    finally:
        shutdown_tracing()


@click.command()
@config_option
def triggers(config_file: Path | None) -> None:
    """Consume events and start the workflows whose triggers match."""
    from triggers.app import serve
    from triggers.settings import TriggersSettings

    settings = load(TriggersSettings, config_file, "triggers")
    agents = load_agents(settings)
    interpreter = None
    slots = None
    if settings.triggers.interpreter:  # the worker's interpreter, in this process (its `worker:` settings)
        from hookline.slots import WorkflowTaskSlots
        from worker.app import running_interpreter
        from worker.settings import WorkerSettings

        worker_settings = settings_of(WorkerSettings, config_file)
        # The starter waits on the interpreter's slots to start runs eagerly (hookline.slots).
        slots = WorkflowTaskSlots(worker_settings.worker.max_concurrent_workflow_tasks)

        def interpreter(client: Client, registry: CollectorRegistry) -> AbstractAsyncContextManager[Worker]:
            identity = f"{client.identity}:triggers"
            return running_interpreter(
                worker_settings, client, agents, registry=registry, identity=identity, slots=slots
            )

    async def main() -> None:
        await serve(settings, lambda: temporal_client(settings), agents=agents, interpreter=interpreter, slots=slots)

    with port_setting("triggers"):
        run(main)


@click.command()
@config_option
@click.option("--runner", "runners", multiple=True, help="Runner pool(s) to serve (default from settings).")
@click.option("--no-workflows", is_flag=True, help="Serve only runner pools, not the interpreter.")
def worker(config_file: Path | None, runners: Sequence[str], no_workflows: bool) -> None:
    """Temporal worker: the workflow interpreter and runner pools."""
    from worker.app import serve
    from worker.settings import WorkerSettings

    settings = load(WorkerSettings, config_file, "worker")
    if runners or no_workflows:
        update = {"runners": list(runners) or settings.worker.runners, "workflows": not no_workflows}
        try:  # validated, so an unknown runner stops here, before connecting anywhere
            options = type(settings.worker).model_validate({**settings.worker.model_dump(), **update})
        except ValueError as exc:
            raise click.ClickException(f"--runner: {exc}") from exc
        settings = settings.model_copy(update={"worker": options})

    async def main() -> None:
        await serve(settings, lambda: temporal_client(settings))

    with port_setting("worker"):
        run(main)


@contextlib.contextmanager
def port_setting(component: str) -> Iterator[None]:
    """A component that cannot listen on its port stops with one line that names the setting."""
    from hookline.health import ListenError

    try:
        yield
    except ListenError as exc:
        env = f"HOOKLINE_{component.upper()}__PORT"
        raise click.ClickException(f"{component}: {exc} (its port is {component}.port, or {env})") from None

"""`hookline stack | run`: Kafka and Temporal on this machine, and with `run` the three
components too, supervised. Every address printed or handed to a component comes from the
settings, adjusted once (`local_settings`) to point at the servers this machine runs."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hookline.cli.common import config_option, load, settings_of
from hookline.cli.init import init_local
from hookline.settings import StackSettings

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings
    from hookline.stack import LocalStack
    from triggers.settings import TriggersSettings
    from worker.settings import WorkerSettings

__all__ = ["health_urls", "local_env", "local_settings", "run", "stack"]

_KAFKA = "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS"
_TEMPORAL = "HOOKLINE_TEMPORAL__ADDRESS"
_TEMPORAL_UI = "HOOKLINE_TEMPORAL__UI_URL"


def local_env(settings: StackSettings, environ: dict[str, str]) -> dict[str, str]:
    """`environ` for the components, pointing them at the local stack's configured ports where
    `environ` names no other address."""
    options = settings.stack
    env = dict(environ)
    env.setdefault(_KAFKA, f"127.0.0.1:{options.kafka_port}")
    env.setdefault(_TEMPORAL, f"127.0.0.1:{options.temporal_port}")
    if options.temporal_ui_port:
        env.setdefault(_TEMPORAL_UI, f"http://127.0.0.1:{options.temporal_ui_port}")
    return env


def local_settings(settings: StackSettings, env: dict[str, str]) -> StackSettings:
    """`settings` with the addresses `env` (from `local_env`) gives the components, so that
    this process prepares, and prints, the servers they use."""
    temporal = {"address": env[_TEMPORAL], "ui_url": env.get(_TEMPORAL_UI, settings.temporal.ui_url)}
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": env[_KAFKA]}),
            "temporal": settings.temporal.model_copy(update=temporal),
        }
    )


def _local_stack(settings: StackSettings) -> LocalStack:
    import tempfile

    from hookline.stack import KafkaServer, LocalStack, TemporalServer

    options = settings.stack
    data_dir = options.data_dir if options.persistent else Path(tempfile.mkdtemp(prefix="hookline-"))
    return LocalStack(
        KafkaServer(
            data_dir / "kafka",
            options.cache_dir,
            port=options.kafka_port,
            controller_port=options.controller_port,
            heap=options.kafka_heap,
            partitions=settings.kafka.events_partitions,
        ),
        TemporalServer(
            data_dir / "temporal",
            port=options.temporal_port,
            ui_port=options.temporal_ui_port,
            db_file=data_dir / "temporal" / "temporal.db" if options.persistent else None,
            namespace=settings.temporal.namespace,
        ),
    )


@click.command()
@config_option
def stack(config_file: Path | None) -> None:
    """Run Kafka (KRaft) and the Temporal dev server on this machine, until Ctrl-C."""
    from hookline.lifecycle import stop_on_signals
    from hookline.stack import StackError

    settings = load(StackSettings, config_file, "stack")
    settings = local_settings(settings, local_env(settings, dict(os.environ)))
    local = _local_stack(settings)

    async def main() -> None:
        try:
            await local.start()
            await init_local(settings, [])
        except StackError as exc:
            raise click.ClickException(str(exc)) from exc
        try:
            click.echo(where(settings))
            await stop_on_signals().wait()
        finally:
            local.stop()

    asyncio.run(main())


@click.command()
@config_option
def run(config_file: Path | None) -> None:
    """Everything on this machine: Kafka, Temporal, gateway, triggers and worker, with the
    example definitions applied. A component that exits or fails its liveness probe is
    restarted (one that keeps failing stops everything). Ctrl-C stops it all."""
    from hookline.lifecycle import stop_on_signals
    from hookline.stack import StackError
    from hookline.supervisor import Child, Supervisor

    settings = load(StackSettings, config_file, "run")
    env = local_env(settings, dict(os.environ))
    if config_file:
        env["HOOKLINE_CONFIG"] = str(config_file)
    settings = local_settings(settings, env)
    local = _local_stack(settings)

    async def main() -> int:
        try:
            await local.start()
            definitions = settings.stack.definitions_dir
            await init_local(settings, [definitions] if definitions is not None and definitions.exists() else [])
        except StackError as exc:
            local.stop()
            raise click.ClickException(str(exc)) from exc
        components = _component_settings(config_file)
        children = [
            Child(name, [sys.executable, "-m", "hookline.cli", name], env, url)
            for name, url in health_urls(*components).items()
        ]
        click.echo(where(settings, components))
        stop = stop_on_signals()
        try:
            return await Supervisor(children, echo=lambda line: click.echo(line, err=True)).run(stop)
        finally:
            local.stop()

    sys.exit(asyncio.run(main()))


def _component_settings(config_file: Path | None) -> tuple[GatewaySettings, TriggersSettings, WorkerSettings]:
    from gateway.settings import GatewaySettings
    from triggers.settings import TriggersSettings
    from worker.settings import WorkerSettings

    return (
        settings_of(GatewaySettings, config_file),
        settings_of(TriggersSettings, config_file),
        settings_of(WorkerSettings, config_file),
    )


def health_urls(gateway: GatewaySettings, triggers: TriggersSettings, worker: WorkerSettings) -> dict[str, str | None]:
    """Each component's liveness URL, from its configured host and port."""

    def url(host: str, port: int | None) -> str | None:
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        return f"http://{host}:{port}/healthz" if port else None

    return {
        "gateway": url(gateway.gateway.host, gateway.gateway.port),
        "triggers": url(triggers.triggers.host, triggers.triggers.port),
        "worker": url(worker.worker.host, worker.worker.port),
    }


def where(
    settings: StackSettings, components: tuple[GatewaySettings, TriggersSettings, WorkerSettings] | None = None
) -> str:
    """What is up and where, for the terminal: the servers, and the components if given."""
    options = settings.stack
    lines = [
        f"Kafka      {settings.kafka.bootstrap_servers}  (topics {settings.kafka.topic_prefix}.*)",
        f"Temporal   {settings.temporal.address}  namespace {settings.temporal.namespace}",
    ]
    if options.temporal_ui_port and settings.temporal.ui_url:
        lines.append(f"Temporal UI {settings.temporal.ui_url}")
    if components is not None:
        gateway, triggers, worker = components
        base = f"http://{gateway.gateway.host}:{gateway.gateway.port}"
        sources = ",".join(gateway.gateway.sources) or "none"
        lines += [
            f"Gateway    {base}  (POST /hooks/{{{sources}}} /ticks/...; /healthz /readyz /metrics)",
            f"API        {base}/api/v1  (see README: API)",
            f"Triggers   http://{triggers.triggers.host}:{triggers.triggers.port}  (/healthz /readyz /metrics)",
            f"Worker     http://{worker.worker.host}:{worker.worker.port}  (/healthz /readyz); "
            f"runner kinds: {', '.join(worker.worker.runners)}",
        ]
    lines.append(f"Data       {options.data_dir.resolve() if options.persistent else 'temporary'}")
    return "\n".join(["", "Hookline is up:", *("  " + line for line in lines), "Ctrl-C stops everything.", ""])

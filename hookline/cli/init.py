"""`hookline apply | init`: store workflow definitions; prepare Kafka and Temporal for Hookline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hookline.cli.common import config_option, load, load_agents, temporal_client
from hookline.settings import ComponentSettings, StackSettings

if TYPE_CHECKING:
    from schemas.validation import SchemaError
    from schemas.workflow import WorkflowDefinition

__all__ = ["apply", "apply_definitions", "init", "init_local", "prepare"]


@click.command()
@config_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def apply(config_file: Path | None, paths: Sequence[Path]) -> None:
    """Create or update the workflow definitions in PATHS (files or folders)."""
    settings = load(StackSettings, config_file, "apply")
    asyncio.run(apply_definitions(settings, list(paths)))


@click.command()
@config_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def init(config_file: Path | None, paths: Sequence[Path]) -> None:
    """Prepare Kafka and Temporal for Hookline: create the topics, register the search
    attributes, and apply the definitions in PATHS. Idempotent; for compose and deployments."""
    settings = load(StackSettings, config_file, "init")
    asyncio.run(prepare(settings, list(paths)))


async def apply_definitions(settings: ComponentSettings, paths: list[Path]) -> None:
    """Store each definition in `paths`, echoing its id and version; the first invalid one stops."""
    from hookline.definitions import DefinitionStore, load_definition_files
    from schemas.workflow import DefinitionError, agent_errors

    # Without an agents file there is no catalog to check the steps' agents against.
    catalog = load_agents(settings) if settings.agents_file else None

    def known_agents(definition: WorkflowDefinition) -> list[SchemaError]:
        return agent_errors(definition, catalog.for_team(definition.team)) if catalog is not None else []

    store = DefinitionStore(settings.kafka, check=known_agents)
    await store.start()
    try:
        for where, doc in load_definition_files(paths):
            try:
                stored = await store.put(doc, author="hookline apply")
            except DefinitionError as exc:
                raise click.ClickException(
                    f"{where}: invalid definition:\n  " + "\n  ".join(map(str, exc.errors))
                ) from exc
            click.echo(f"{stored.id}: version {stored.version} ({where})")
    finally:
        await store.stop()


async def prepare(settings: StackSettings, paths: list[Path]) -> None:
    """The topics, the search attributes, then the definitions in `paths`."""
    from hookline.kafka import ensure_topics, wait_for_kafka
    from hookline.temporal import register_search_attributes

    await wait_for_kafka(settings.kafka.bootstrap_servers)
    await ensure_topics(settings.kafka)
    client = await temporal_client(settings)
    await register_search_attributes(client, settings.temporal.namespace)
    if paths:
        await apply_definitions(settings, paths)


async def init_local(settings: StackSettings, paths: list[Path]) -> None:
    """`prepare`, plus what only the local dev server gets: the retention that sets the dedupe window."""
    from hookline.temporal import set_retention

    await prepare(settings, paths)
    client = await temporal_client(settings)
    await set_retention(client, settings.temporal.namespace, settings.stack.retention_days)

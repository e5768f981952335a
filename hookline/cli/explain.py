"""`hookline explain`: what an event would start, answered by the code behind
`POST /api/v1/events/explain` (gateway/api/events.py), against every stored definition."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hookline.cli.common import config_option, load

if TYPE_CHECKING:
    from gateway.api.models import EventExplanation
    from gateway.settings import GatewaySettings
    from hookline.settings import ComponentSettings
    from schemas.events import Event

__all__ = ["events_of", "explain"]


@click.command()
@config_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", help="FILE is a raw webhook body for this configured source, e.g. alertmanager.")
def explain(config_file: Path | None, file: Path, source: str | None) -> None:
    """Which definitions an event would start, why the others would not, and with which input.
    FILE is a CloudEvent as JSON, or with --source a webhook body. Starts nothing."""
    from gateway.settings import GatewaySettings

    settings = load(GatewaySettings, config_file, "explain")
    try:
        events = events_of(file.read_bytes(), source, settings)
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    for answer in asyncio.run(_explain(settings, events)):
        rows = [row.model_dump(mode="json") for row in answer.definitions]
        click.echo(json.dumps({"event": answer.event.id, "type": answer.event.type, "definitions": rows}, indent=2))


def events_of(body: bytes, source: str | None, settings: GatewaySettings) -> list[Event]:
    """The events in FILE's bytes: one CloudEvent, or with `source` those of a webhook body.
    Raises ValueError saying what is wrong."""
    import orjson
    from pydantic import ValidationError

    from gateway.api.events import cloudevent, webhook_events
    from gateway.errors import GatewayError
    from gateway.sources import build_source

    if source is not None:
        configured = settings.gateway.sources
        if source not in configured:
            raise ValueError(f"no source named {source!r} is configured; known: {', '.join(sorted(configured))}")
        try:
            return webhook_events(build_source(source, configured[source]), body)
        except GatewayError as exc:
            raise ValueError(str(exc)) from exc
    try:
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            raise TypeError(f"a JSON {type(doc).__name__}, not an object")
        return [cloudevent(doc)]
    except (orjson.JSONDecodeError, TypeError, ValidationError) as exc:
        raise ValueError(f"not a CloudEvent as JSON ({exc}); for a webhook body pass --source") from exc


async def _explain(settings: ComponentSettings, events: list[Event]) -> list[EventExplanation]:
    from gateway.api.events import explanations
    from hookline.definitions import DefinitionStore

    store = DefinitionStore(settings.kafka)
    await store.start()
    try:
        return explanations(store.all(), events)
    finally:
        await store.stop()

"""`hookline replay`: re-publish dead-lettered events once their cause is fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hookline.cli.common import config_option, load
from hookline.settings import StackSettings

__all__ = ["replay"]


@click.command()
@config_option
@click.option("--reason", default="", help="Only records whose DLQ reason contains this text.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; publish nothing.")
def replay(config_file: Path | None, reason: str, dry_run: bool) -> None:
    """Re-publish dead-lettered events to the events topic (after fixing their cause)."""
    from hookline.dlq import replay_dlq

    settings = load(StackSettings, config_file, "replay")

    def report(why: str, chosen: bool) -> None:
        click.echo(f"{'replay' if chosen else 'keep  '}  {why}")

    result = asyncio.run(
        replay_dlq(settings.kafka, select=lambda why: reason in why, dry_run=dry_run, on_record=report)
    )
    if dry_run:
        click.echo(f"would replay {result.selected} of {result.examined} dead-lettered records")
    else:
        click.echo(f"replayed {result.replayed} of {result.examined} dead-lettered records")

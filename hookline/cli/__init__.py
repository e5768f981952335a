"""The `hookline` command: run each component, the local stack, or everything at once.

One module per job: `components` (gateway, triggers, worker), `stack` (stack, run), `init`
(init, apply), `dlq` (replay), `explain`. Each imports what its command runs only when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from hookline.cli.components import gateway, triggers, worker
from hookline.cli.dlq import replay
from hookline.cli.explain import explain
from hookline.cli.init import apply, init
from hookline.cli.stack import run, stack

__all__ = ["cli", "main"]


@click.group()
def cli() -> None:
    """Hookline: webhooks, alerts, cron ticks and Kafka events in; durable Temporal workflows out."""


for _command in (gateway, triggers, worker, apply, init, stack, run, replay, explain):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="hookline")

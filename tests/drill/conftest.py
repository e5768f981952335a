"""The drill stack (its own Kafka and Temporal: the drills kill them) and the results table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mark_folder
from tests.drill.harness import DrillStack, Outcome

OUTCOMES: list[Outcome] = []
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The drills start a Kafka and a Temporal of their own: marked `integration` (and `drill`,
    and `long`) here, where no module can forget it, so `pytest -m "not integration"` runs the
    unit tests."""
    mark_folder(items, HERE, pytest.mark.integration, pytest.mark.drill, pytest.mark.long)
    # One worker runs them all (`make test` runs pytest-xdist with --dist loadgroup): they share
    # the package's drill stack, which a second worker would start again.
    mark_folder(items, HERE, pytest.mark.xdist_group("drill"))


@pytest.fixture(scope="package")  # stopped when the drills are done, not at the session's end
def drill_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillStack]:
    stack = DrillStack(Path(tmp_path_factory.mktemp("drill")))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stack.start())
        yield stack
    finally:
        stack.stop()
        loop.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if OUTCOMES:
        terminalreporter.section("drills")
        terminalreporter.write_line(Outcome.header())
        for outcome in OUTCOMES:
            terminalreporter.write_line(outcome.row())

"""The cluster of docs/cluster.md for the tests marked `cluster` (tests/cluster): started once for
the folder, killed at its end. They run with `make cluster-drill` (HOOKLINE_CLUSTER=1), not in
`make test`: see docs/cluster.md for what they take."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookline.cluster import ClusterStack
from tests.cluster.harness import DEFINITION, drill_cluster
from tests.conftest import ROOT, mark_folder

HERE = Path(__file__).resolve().parent
TABLES: list[str] = []
ENABLED = os.environ.get("HOOKLINE_CLUSTER") == "1"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that the folder runs under --strict-markers wherever pyproject is.
    config.addinivalue_line("markers", "cluster: starts the multi-node cluster (tests/cluster; make cluster-drill)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marked `integration` and `cluster` here, where no module can forget it, with
    HOOKLINE_CLUSTER=1 (`make cluster-drill`); without it deselected (`make test` does not run
    the cluster drill: docs/cluster.md says why), so they count as neither run nor skipped."""
    if ENABLED:
        mark_folder(items, HERE, pytest.mark.integration, pytest.mark.cluster)
        return
    drill = [item for item in items if item.path.resolve().is_relative_to(HERE)]
    if drill:
        config.hook.pytest_deselected(items=drill)
        items[:] = [item for item in items if item not in drill]


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    """Three Kafka brokers, the Temporal server's four services on PostgreSQL, two gateways, two
    triggers and two workers, with the drill's definition stored."""
    stack = drill_cluster(Path(tmp_path_factory.mktemp("cluster")), ROOT / ".cache")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stack.start(definitions=[DEFINITION]))
        yield stack
    finally:
        stack.kill()  # its data is thrown away: no graceful stop
        loop.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TABLES:
        terminalreporter.section("cluster drill")
        for line in TABLES:
            terminalreporter.write_line(line)

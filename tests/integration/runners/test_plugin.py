"""A third-party runner kind, pip-installed from examples/runners/, served by a real
`hookline worker --runner python` process, running a workflow step on a real Temporal; and the
pool it serves going from no pollers to polling."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client

from hookline.definitions import StoredDefinition
from hookline.pools import PoolStatus, describe_pools, pools_of
from hookline.runs import build_request, start_run
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from schemas.workflow import parse_definition
from tests.conftest import ROOT

PLUGIN = ROOT / "examples" / "runners" / "python-runner"
AGENTS = {"agents": {"greeter": {"runner": "python", "options": {"callable": "hookline_python_runner.examples:greet"}}}}
CATALOG = AgentCatalog(agents={"greeter": Agent(name="greeter", **AGENTS["agents"]["greeter"])})


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plug-in pip-installed into a folder of its own (built from a copy, so the
    build leaves nothing in the source tree)."""
    base = tmp_path_factory.mktemp("plugin")
    shutil.copytree(PLUGIN, base / "src")
    env = {**os.environ, "PIP_CACHE_DIR": str(ROOT / ".cache" / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(base / "site"), str(base / "src")],
        env=env,
        check=True,
    )
    return base / "site"


@pytest.fixture
def worker_process(
    plugin_site: Path, temporal_settings: TemporalSettings, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`hookline worker --runner python` with the plug-in on its path; started on first use."""
    (tmp_path / "agents.yaml").write_text(yaml.safe_dump(AGENTS))
    config = {
        "agents_file": str(tmp_path / "agents.yaml"),
        "temporal": temporal_settings.model_dump(),
        "log": {"level": "warning"},
        "worker": {"port": 0},
    }
    (tmp_path / "hookline.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), str(ROOT)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hookline.cli",
            "worker",
            "--runner",
            "python",
            "--config",
            str(tmp_path / "hookline.yaml"),
        ],
        env=env,
        cwd=tmp_path,
    )
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def pool_status(client: Client, settings: TemporalSettings) -> PoolStatus:
    (status,) = await describe_pools(client, settings, pools_of(CATALOG))
    return status


async def wait_polling(client: Client, settings: TemporalSettings) -> PoolStatus:
    for _ in range(300):
        status = await pool_status(client, settings)
        if status.polling:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError("the pool never got a poller")


async def test_a_pool_shows_no_pollers_until_its_worker_starts(
    temporal_client: Client, temporal_settings: TemporalSettings, plugin_site: Path, request: pytest.FixtureRequest
) -> None:
    before = await pool_status(temporal_client, temporal_settings)
    assert (before.pool, before.kinds, before.polling, before.pollers) == ("python", ("python",), False, 0)
    request.getfixturevalue("worker_process")
    after = await wait_polling(temporal_client, temporal_settings)
    assert after.pollers >= 1 and after.last_poll is not None
    assert after.task_queue == temporal_settings.runner_queue("python")


async def test_a_step_runs_on_an_installed_third_party_runner(
    temporal_client: Client, temporal_settings: TemporalSettings, worker_process: subprocess.Popen[bytes]
) -> None:
    agents = CATALOG
    doc = {"name": "Greet", "steps": [{"name": "Greet", "agent": "greeter", "with": {"who": "plug-ins"}}]}
    definition = parse_definition(doc, agents=agents.agents.keys())
    stored = StoredDefinition(
        id=definition.id, version=1, digest="", document=doc, definition=definition, created_at=""
    )
    request = build_request(stored, agents, temporal_settings)
    handle, _ = await start_run(temporal_client, temporal_settings, request, f"greet:{uuid.uuid4().hex}")
    state: RunState = await asyncio.wait_for(handle.result(), 60)
    assert state.status == "succeeded"
    assert state.steps["Greet"].output == '{"greeting": "hello, plug-ins", "step": "Greet"}'

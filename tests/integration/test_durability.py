"""Runs outlive their worker, and keep the definition version they started with."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.runs import build_request, start_run
from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog
from schemas.run import RunState
from tests.conftest import ROOT
from tests.eventually import eventually
from worker.app import build_workers
from worker.settings import WorkerSettings

# `record` logs "<step> start" and "<step> done"; the step named "long" takes a while between
# the two, and the step named "hold" waits until a file named "release" exists.
RECORD = """
echo "$HOOKLINE_STEP start" >> steps.log
if [ "$HOOKLINE_STEP" = long ]; then sleep 3; fi
if [ "$HOOKLINE_STEP" = hold ]; then while [ ! -f release ]; do sleep 0.05; done; fi
echo "$HOOKLINE_STEP done" >> steps.log
"""


@pytest.fixture
def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump({"agents": {"record": {"command": ["sh", "-c", RECORD], "timeout_s": 60}}}))
    return path


def start_worker(temporal: TemporalSettings, agents_file: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        HOOKLINE_TEMPORAL__ADDRESS=temporal.address,
        HOOKLINE_TEMPORAL__TASK_QUEUE=temporal.task_queue,
        HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX=temporal.runner_queue_prefix,
        HOOKLINE_AGENTS_FILE=str(agents_file),
        HOOKLINE_LOG__FORMAT="json",
        HOOKLINE_WORKER__PORT="0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "hookline.cli", "worker"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )


async def wait_for_line(log: Path, line: str, timeout: float = 30) -> None:
    await eventually(
        lambda: log.exists() and line in log.read_text().splitlines(), f"{line!r} in {log}", timeout=timeout
    )


@pytest.mark.long
async def test_a_sigkilled_worker_is_replaced_and_completed_steps_do_not_run_again(
    store: DefinitionStore,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents_file: Path,
    tmp_path: Path,
) -> None:
    stored = await store.put(
        {"name": "Three Steps", "steps": [{"name": n, "agent": "record"} for n in ("first", "long", "last")]}
    )
    agents = AgentCatalog.load(agents_file)
    request = build_request(stored, agents, temporal_settings)
    log = tmp_path / "steps.log"
    first = start_worker(temporal_settings, agents_file)
    try:
        handle, _ = await start_run(temporal_client, temporal_settings, request, f"three-steps:{uuid.uuid4().hex}")
        await wait_for_line(log, "long start")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    await asyncio.sleep(0.5)
    # The step's process died with its worker (it never finished the first time).
    assert "long done" not in log.read_text().splitlines()
    second = start_worker(temporal_settings, agents_file)
    try:
        state = await asyncio.wait_for(handle.result(), 60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert state.status == "succeeded"
    lines = log.read_text().splitlines()
    assert lines.count("first start") == lines.count("first done") == 1
    assert lines.count("long start") == 2 and lines.count("long done") == 1
    assert lines.count("last start") == lines.count("last done") == 1
    assert lines.index("long done") < lines.index("last start")


@pytest.fixture
async def in_process_worker(
    temporal_client: Client, temporal_settings: TemporalSettings, agents_file: Path
) -> AsyncIterator[None]:
    settings = WorkerSettings(temporal=temporal_settings)
    async with AsyncExitStack() as stack:
        for w in build_workers(settings, temporal_client, AgentCatalog.load(agents_file)):
            await stack.enter_async_context(w)
        yield


@pytest.mark.usefixtures("in_process_worker")
async def test_a_run_keeps_its_definition_version_when_the_definition_changes_or_goes(
    store: DefinitionStore,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents_file: Path,
    tmp_path: Path,
) -> None:
    v1 = await store.put(
        {"name": "Pinned", "steps": [{"name": "hold", "agent": "record"}, {"name": "v1-only", "agent": "record"}]}
    )
    request = build_request(v1, AgentCatalog.load(agents_file), temporal_settings)
    handle, _ = await start_run(temporal_client, temporal_settings, request, f"pinned:{uuid.uuid4().hex}")
    await wait_for_line(tmp_path / "steps.log", "hold start")
    v2 = await store.put({"name": "Pinned", "steps": [{"name": "v2-only", "agent": "record"}]})
    assert v2.version == 2
    await store.delete("pinned")
    assert store.get("pinned") is None
    (tmp_path / "release").touch()
    state: RunState = await asyncio.wait_for(handle.result(), 30)
    assert (state.status, state.definition_version) == ("succeeded", 1)
    assert list(state.steps) == ["hold", "v1-only"]
    assert "v1-only done" in (tmp_path / "steps.log").read_text().splitlines()
    assert "v2-only start" not in (tmp_path / "steps.log").read_text().splitlines()

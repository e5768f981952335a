"""The sandbox runner under real bubblewrap: read-only system, private /tmp, no network unless
the agent allows it, the working directory read-only unless allowed, nothing else visible."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from schemas.agents import Agent
from schemas.run import StepResult
from tests.integration.runners.harness import Harness

CONNECT = (
    "import socket, sys; "
    "socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).close(); print('connected')"
)


def sandboxed(workdir: Path, *command: str, **options: Any) -> Agent:
    return Agent(name="boxed", runner="sandbox", command=command, workdir=workdir, timeout_s=20, options=options)


async def run(harness: Harness, agent: Agent) -> StepResult:
    return await harness.run(agent)


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    """A TCP server on the worker's loopback."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_the_system_is_read_only(sandbox_harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as failed:
        await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", "echo x > /usr/hookline-was-here"))
    assert "Read-only file system" in failed.value.details[0]["output"]
    assert not Path("/usr/hookline-was-here").exists()


async def test_tmp_is_private_and_empty(sandbox_harness: Harness, tmp_path: Path) -> None:
    host_file = Path(tempfile.gettempdir()) / f"hookline-host-{uuid.uuid4().hex}"
    host_file.write_text("host")
    mine = f"mine-{uuid.uuid4().hex}"
    try:
        result = await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", f"ls -A /tmp; echo inside > /tmp/{mine}"))
    finally:
        host_file.unlink()
    # Only the mount point of the working directory (under the host's /tmp in tests) is there.
    assert result.output.split() == [tmp_path.parts[2]]
    assert not (Path(tempfile.gettempdir()) / mine).exists()


async def test_there_is_no_network_by_default(sandbox_harness: Harness, tmp_path: Path, listener: int) -> None:
    with pytest.raises(ApplicationError) as failed:
        await run(sandbox_harness, sandboxed(tmp_path, "python3", "-c", CONNECT, str(listener)))
    assert "Connection refused" in failed.value.details[0]["output"]


async def test_an_agent_may_allow_the_network(sandbox_harness: Harness, tmp_path: Path, listener: int) -> None:
    agent = sandboxed(tmp_path, "python3", "-c", CONNECT, str(listener), network=True)
    assert (await run(sandbox_harness, agent)).output.strip() == "connected"


async def test_the_working_directory_is_read_only_by_default(sandbox_harness: Harness, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("given")
    with pytest.raises(ApplicationError) as failed:
        await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", "cat input.txt; echo x > out.txt"))
    assert failed.value.details[0]["output"].startswith("given")
    assert not (tmp_path / "out.txt").exists()


async def test_an_agent_may_get_a_writable_working_directory(sandbox_harness: Harness, tmp_path: Path) -> None:
    await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", "echo x > out.txt", writable_workdir=True))
    assert (tmp_path / "out.txt").read_text() == "x\n"


async def test_the_rest_of_the_machine_is_not_visible(sandbox_harness: Harness, tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[3]
    result = await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", f"ls {project} /root /home 2>&1; true"))
    assert result.output.count("No such file or directory") == 3


@pytest.fixture
def etc_secret() -> Iterator[Path]:
    """A file under the host's /etc that no step may read (as an ssh client key kept there)."""
    secret = Path(f"/etc/hookline-test-secret-{uuid.uuid4().hex}")
    secret.write_text("do not show")
    secret.chmod(0o644)
    yield secret
    secret.unlink()


async def test_etc_shows_only_what_programs_need(sandbox_harness: Harness, tmp_path: Path, etc_secret: Path) -> None:
    result = await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", f"cat {etc_secret} 2>&1; ls /etc; true"))
    assert "do not show" not in result.output
    assert "No such file or directory" in result.output
    assert "passwd" in result.output.split()


async def test_private_tls_keys_are_not_visible(sandbox_harness: Harness, tmp_path: Path) -> None:
    result = await run(sandbox_harness, sandboxed(tmp_path, "sh", "-c", "ls -A /etc/ssl; true"))
    assert "private" not in result.output.split()


async def test_the_step_has_no_capabilities(sandbox_harness: Harness, tmp_path: Path) -> None:
    result = await run(sandbox_harness, sandboxed(tmp_path, "grep", "CapEff", "/proc/self/status"))
    assert result.output.split() == ["CapEff:", "0000000000000000"]


async def test_a_relative_read_only_path_is_a_configuration_error(sandbox_harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as failed:
        await run(sandbox_harness, sandboxed(tmp_path, "true", read_only_paths=["data"]))
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)

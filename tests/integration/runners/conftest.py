"""Runner back ends, started once per session where they are costly (sshd, podman), and one
contract harness per runner kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.agents import Agent
from tests.integration.runners.harness import CAP, Behaviour, Harness, process_running
from worker.runners import RunnerContext
from worker.runners.sandbox import SandboxRunner
from worker.runners.shell import ShellRunner

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def local_agent(kind: str, behaviour: Behaviour, token: str, workdir: Path) -> Agent:
    """The contract behaviours as commands on this machine (shell, sandbox)."""
    commands: dict[Behaviour, tuple[str, ...]] = {
        "echo": ("cat",),
        "fail": ("sh", "-c", "echo boom; exit 3"),
        "slow": ("sleep", token),
        "flood": ("sh", "-c", "yes hookline | head -c 100000"),
        "bad_config": ("true",),
    }
    return Agent(
        name=f"{kind}-{behaviour}",
        runner=kind,
        command=commands[behaviour],
        workdir=workdir,
        timeout_s=1.5 if behaviour == "slow" else 30,
        options={"no_such_option": True} if behaviour == "bad_config" else {},
    )


@pytest.fixture
async def shell_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    runner = ShellRunner.create(RunnerContext(output_cap_bytes=CAP, inherited_env=ENV))
    yield Harness("shell", runner, lambda b, t: local_agent("shell", b, t, tmp_path), process_running)
    await runner.close()


@pytest.fixture
async def sandbox_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    runner = SandboxRunner.create(RunnerContext(output_cap_bytes=CAP, inherited_env=ENV))
    yield Harness("sandbox", runner, lambda b, t: local_agent("sandbox", b, t, tmp_path), process_running)
    await runner.close()

"""The container runner against a real engine (podman's Docker-compatible service, runc): no
network by default, containers removed whatever happens, options reach the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from temporalio.exceptions import ApplicationError

from schemas.agents import Agent
from tests.integration.runners.backends import Podman
from tests.integration.runners.harness import Harness, cleanup_sleepers, sleep_token, wait_until
from worker.runners import RunnerContext
from worker.runners.container import ContainerRunner


def boxed(podman: Podman, *command: str, timeout_s: float = 30, **options: Any) -> Agent:
    return Agent(
        name="boxed",
        runner="container",
        command=command,
        timeout_s=timeout_s,
        options={"image": podman.image, "pull": "never", **options},
    )


async def containers_of(podman: Podman, workflow_id: str) -> list[Any]:
    async with aiodocker.Docker(url=podman.url) as docker:
        found = await docker.containers.list(all=True, filters={"label": [f"hookline.workflow_id={workflow_id}"]})
    return list(found)


async def failure(harness: Harness, agent: Agent) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(agent)
    return failed.value


async def test_a_container_has_no_network_but_loopback_by_default(container_harness: Harness, podman: Podman) -> None:
    result = await container_harness.run(boxed(podman, "ls", "/sys/class/net"))
    assert result.output.split() == ["lo"]


async def test_the_step_sees_its_hookline_variables(container_harness: Harness, podman: Podman) -> None:
    result = await container_harness.run(boxed(podman, "sh", "-c", 'echo "$HOOKLINE_AGENT/$HOOKLINE_STEP"'))
    assert result.output == "boxed/contract\n"


async def test_stdout_and_stderr_are_both_kept(container_harness: Harness, podman: Podman) -> None:
    result = await container_harness.run(boxed(podman, "sh", "-c", "echo out; sleep 0.1; echo err >&2"))
    assert result.output.split() == ["out", "err"]


async def test_user_and_working_directory_options_reach_the_engine(container_harness: Harness, podman: Podman) -> None:
    result = await container_harness.run(boxed(podman, "sh", "-c", "id -u; pwd", user="65534", workdir="/tmp"))
    assert result.output.split() == ["65534", "/tmp"]


async def test_a_read_only_root_filesystem_can_be_asked_for(container_harness: Harness, podman: Podman) -> None:
    error = await failure(container_harness, boxed(podman, "touch", "/etc/x", read_only=True))
    assert "Read-only file system" in error.details[0]["output"]


@pytest.mark.parametrize("command", [("true",), ("sh", "-c", "exit 4")])
async def test_the_container_is_removed_after_the_step(
    container_harness: Harness, podman: Podman, command: tuple[str, ...]
) -> None:
    try:
        await container_harness.run(boxed(podman, *command))
    except ApplicationError:
        pass
    assert await containers_of(podman, "contract-boxed") == []


async def test_a_cancelled_step_stops_and_removes_its_container(container_harness: Harness, podman: Podman) -> None:
    token = sleep_token()
    env = container_harness.environment()
    step = asyncio.create_task(container_harness.run(boxed(podman, "sleep", token, timeout_s=60), env))
    try:
        assert await wait_until(lambda: container_harness.running(token), 30)
        assert len(await containers_of(podman, "contract-boxed")) == 1
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await step
        assert await containers_of(podman, "contract-boxed") == []
        assert not await container_harness.running(token)
    finally:
        cleanup_sleepers(token)


async def test_a_missing_image_that_may_not_be_pulled_is_a_configuration_error(
    container_harness: Harness, podman: Podman
) -> None:
    error = await failure(container_harness, boxed(podman, "true", image="localhost/not-here:1"))
    assert (error.type, error.non_retryable) == ("Config", True)


async def test_an_unreachable_engine_is_retryable(podman: Podman, tmp_path: Path) -> None:
    runner = ContainerRunner.create(RunnerContext(settings={"docker_url": f"unix://{tmp_path}/no.sock"}))
    harness = Harness("container", runner, lambda b, t: boxed(podman, "true"), lambda t: asyncio.sleep(0, False))
    error = await failure(harness, boxed(podman, "true"))
    await runner.close()
    assert (error.type, error.non_retryable) == ("Engine", False)


def status_fields(output: str, *names: str) -> list[str]:
    """The values of `names` in a /proc/<pid>/status (the image has no grep)."""
    fields = dict(line.split(":", 1) for line in output.splitlines() if ":" in line)
    return [fields[name].strip() for name in names]


async def test_a_container_has_no_capabilities_and_cannot_gain_privileges(
    container_harness: Harness, podman: Podman
) -> None:
    result = await container_harness.run(boxed(podman, "cat", "/proc/self/status"))
    assert status_fields(result.output, "CapEff", "CapBnd", "NoNewPrivs") == ["0" * 16, "0" * 16, "1"]


async def test_a_container_has_a_process_limit(container_harness: Harness, podman: Podman) -> None:
    result = await container_harness.run(boxed(podman, "cat", "/sys/fs/cgroup/pids/pids.max"))
    assert result.output.strip() == "512"


async def test_an_agent_may_add_capabilities_and_set_the_process_limit(
    container_harness: Harness, podman: Podman
) -> None:
    agent = boxed(podman, "sh", "-c", "cat /proc/self/status; echo pids: $(cat /sys/fs/cgroup/pids/pids.max)")
    options = {**agent.options, "cap_add": ["NET_BIND_SERVICE"], "pids_limit": 64}
    result = await container_harness.run(agent.model_copy(update={"options": options}))
    assert status_fields(result.output, "CapEff", "pids") == [f"{1 << 10:016x}", "64"]

"""The ssh runner against a real OpenSSH sshd on loopback: host keys verified, argv kept
literal, data on stdin and HOOKLINE_* variables through AcceptEnv."""

from __future__ import annotations

import socket
from pathlib import Path

import asyncssh
import pytest
from temporalio.exceptions import ApplicationError

from schemas.agents import Agent
from tests.integration.runners.backends import Sshd
from tests.integration.runners.harness import INPUT, Harness
from worker.runners import RunnerContext
from worker.runners.ssh import SshRunner


def remote(server: Sshd, *command: str, port: int | None = None) -> Agent:
    options = {"host": "127.0.0.1", "port": port or server.port, "username": server.username}
    return Agent(name="remote", runner="ssh", command=command, timeout_s=20, options=options)


def harness_with(server: Sshd, **settings: object) -> Harness:
    base: dict[str, object] = {"known_hosts": str(server.known_hosts), "client_keys": [str(server.client_key)]}
    runner = SshRunner.create(RunnerContext(settings={**base, **settings}))

    async def never(token: str) -> bool:
        return False

    return Harness("ssh", runner, lambda b, t: remote(server, "true"), never)


async def failure(harness: Harness, agent: Agent) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(agent)
    return failed.value


async def test_a_step_runs_on_the_remote_host_with_its_data_on_stdin(ssh_harness: Harness, ssh_server: Sshd) -> None:
    result = await ssh_harness.run(
        remote(ssh_server, "python3", "-c", "import json,sys; print(json.load(sys.stdin)['input'])")
    )
    assert result.output.strip() == str(INPUT)


async def test_hookline_variables_reach_the_remote_command(ssh_harness: Harness, ssh_server: Sshd) -> None:
    result = await ssh_harness.run(remote(ssh_server, "sh", "-c", 'echo "$HOOKLINE_STEP $HOOKLINE_AGENT"'))
    assert result.output == "contract remote\n"


async def test_the_argv_reaches_the_remote_host_literally(
    ssh_harness: Harness, ssh_server: Sshd, tmp_path: Path
) -> None:
    result = await ssh_harness.run(
        remote(ssh_server, "printf", "%s|", "a b", "$(id)", "`id`", "; id", f"> {tmp_path}/x")
    )
    assert result.output == f"a b|$(id)|`id`|; id|> {tmp_path}/x|"
    assert not (tmp_path / "x").exists()


async def test_an_unknown_host_key_is_refused_before_anything_runs(ssh_server: Sshd, tmp_path: Path) -> None:
    harness = harness_with(ssh_server, known_hosts=str(ssh_server.stranger_known_hosts))
    error = await failure(harness, remote(ssh_server, "touch", str(tmp_path / "ran")))
    assert (error.type, error.non_retryable) == ("HostKey", True)
    assert "add it to known_hosts" in error.message
    assert not (tmp_path / "ran").exists()


async def test_a_host_missing_from_known_hosts_is_refused(ssh_server: Sshd, tmp_path: Path) -> None:
    (tmp_path / "empty_known_hosts").write_text("")
    error = await failure(
        harness_with(ssh_server, known_hosts=str(tmp_path / "empty_known_hosts")), remote(ssh_server, "true")
    )
    assert (error.type, error.non_retryable) == ("HostKey", True)


async def test_a_key_the_host_does_not_accept_is_a_login_error(ssh_server: Sshd, tmp_path: Path) -> None:
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp_path / "stranger_key"))
    error = await failure(
        harness_with(ssh_server, client_keys=[str(tmp_path / "stranger_key")]), remote(ssh_server, "true")
    )
    assert (error.type, error.non_retryable) == ("Auth", True)


async def test_without_known_hosts_the_runner_refuses_to_connect(ssh_server: Sshd) -> None:
    error = await failure(harness_with(ssh_server, known_hosts=None), remote(ssh_server, "true"))
    assert (error.type, error.non_retryable) == ("Config", True)


async def test_an_unreachable_host_is_retryable(ssh_harness: Harness, ssh_server: Sshd) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    error = await failure(ssh_harness, remote(ssh_server, "true", port=closed_port))
    assert (error.type, error.non_retryable) == ("Connection", False)


async def test_exit_codes_map_like_the_shell_runner(ssh_harness: Harness, ssh_server: Sshd) -> None:
    agent = remote(ssh_server, "sh", "-c", "exit 2").model_copy(
        update={"options": {**remote(ssh_server).options, "non_retryable_exit_codes": [2]}}
    )
    error = await failure(ssh_harness, agent)
    assert (error.type, error.non_retryable, error.message) == ("ExitCode", True, "exited with code 2")

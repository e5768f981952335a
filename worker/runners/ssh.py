"""The ssh runner: runs the agent's argv on another host (a cloud VM, a bastion-reachable box)
over SSH. Host keys are always verified against the worker's known_hosts; an unknown or changed
key refuses the step. The step context arrives as JSON on stdin; the `HOOKLINE_*` variables are
sent as SSH environment requests (the server's `AcceptEnv HOOKLINE_*` lets them through)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from pathlib import Path
from typing import ClassVar

import asyncssh
import orjson
from pydantic import Field

from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import StepFailed, config_error, exit_failure, inline_refused, killed_by, timed_out
from worker.runners.base import ConfiguredRunner, OutputBuffer, RunnerOptions, matches_any, step_context, step_env

__all__ = ["SshInlinePolicy", "SshOptions", "SshRunner", "SshSettings"]


class SshOptions(RunnerOptions):
    """Agent `options:` of the ssh runner."""

    host: str = Field(min_length=1)
    port: int = Field(22, ge=1, le=65535)
    username: str = Field(min_length=1)
    client_keys: list[Path] | None = Field(None, description="Private keys on the worker; default: the worker's.")
    non_retryable_exit_codes: list[int] = Field(default_factory=list)


class SshInlinePolicy(RunnerOptions):
    """What inline actions (written in definitions) may ask of the ssh runner. Their keys are
    always among the worker's `client_keys`."""

    hosts: list[str] = Field(default_factory=list, description="Hosts they may log in to (fnmatch patterns).")
    users: list[str] = Field(default_factory=list, description="Users they may log in as.")


class SshSettings(RunnerOptions):
    """Worker `runner_settings.ssh:`."""

    known_hosts: Path | None = Field(None, description="The only host keys trusted (OpenSSH known_hosts format).")
    client_keys: list[Path] = Field(default_factory=list, description="Private keys agents log in with.")
    connect_timeout_s: float = Field(15.0, gt=0)
    inline: SshInlinePolicy = Field(default_factory=SshInlinePolicy)


class SshRunner(ConfiguredRunner[SshSettings, SshOptions]):
    kind: ClassVar[str] = "ssh"
    settings_model = SshSettings
    options_model = SshOptions

    def check(self, agent: Agent) -> SshOptions:
        options = super().check(agent)
        if self._settings.known_hosts is None or not self._settings.known_hosts.is_file():
            raise config_error("worker.runner_settings.ssh.known_hosts must name a known_hosts file")
        if not (options.client_keys or self._settings.client_keys):
            raise config_error(f"agent {agent.name!r}: no client key (options.client_keys or runner_settings)")
        return options

    def check_inline(self, agent: Agent, options: SshOptions) -> None:
        policy = self._settings.inline
        if not matches_any(options.host, policy.hosts):
            raise inline_refused(self.kind, "host", options.host, "hosts", policy.hosts)
        if options.username not in policy.users:
            raise inline_refused(self.kind, "username", options.username, "users", policy.users)
        configured = {k.resolve() for k in self._settings.client_keys}
        for key in options.client_keys or ():
            if key.resolve() not in configured:
                raise config_error(
                    f"inline action option client_keys names {str(key)!r}, not one of this worker's keys "
                    "(worker.runner_settings.ssh.client_keys); an inline action logs in only with those"
                )

    async def close(self) -> None:
        """Nothing to release: each step opens and closes its own connection."""

    async def run(self, agent: Agent, options: SshOptions, request: StepRequest) -> StepResult:
        try:
            async with asyncio.timeout(agent.timeout_s):
                conn = await self._connect(options)
                try:
                    return await self._execute(conn, agent, request, options)
                finally:
                    conn.close()
        except TimeoutError:
            raise timed_out(agent.timeout_s) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise StepFailed(
                f"host key of {options.host}:{options.port} not trusted ({exc.reason}); add it to known_hosts",
                retryable=False,
                kind="HostKey",
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise StepFailed(
                f"{options.username}@{options.host} refused the login: {exc.reason}", retryable=False, kind="Auth"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise StepFailed(
                f"ssh to {options.host}:{options.port} failed: {exc}", retryable=True, kind="Connection"
            ) from None

    async def _connect(self, options: SshOptions) -> asyncssh.SSHClientConnection:
        if self._settings.known_hosts is None:  # `check` refused the step already
            raise config_error("worker.runner_settings.ssh.known_hosts must name a known_hosts file")
        return await asyncssh.connect(
            options.host,
            options.port,
            username=options.username,
            known_hosts=str(self._settings.known_hosts),
            client_keys=[str(k) for k in options.client_keys or self._settings.client_keys],
            # Nothing from the worker's user account: no ~/.ssh/config, no ssh-agent, no password.
            config=[],
            agent_path=None,
            password=None,
            connect_timeout=self._settings.connect_timeout_s,
        )

    async def _execute(
        self, conn: asyncssh.SSHClientConnection, agent: Agent, request: StepRequest, options: SshOptions
    ) -> StepResult:
        # The argv comes from configuration, never from event data; quoted for the remote shell.
        process = await conn.create_process(
            _WRAPPER + shlex.join(agent.command), env=step_env(agent, request), encoding=None
        )
        output = OutputBuffer(self._cap)
        session: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        try:
            process.stdin.write(orjson.dumps(step_context(request)))
            process.stdin.write_eof()
            await asyncio.gather(_pump(process.stdout, output), _pump(process.stderr, output, session))
            completed = await process.wait()
        except BaseException:
            # Timeout or cancellation: kill the remote command, not just our end of the channel.
            await _kill(conn, process, session)
            raise
        if completed.exit_signal is not None:
            raise killed_by(completed.exit_signal[0], output.text())
        code = completed.exit_status or 0
        if code != 0:
            raise exit_failure(code, output.text(), options.non_retryable_exit_codes)
        return StepResult(exit_code=0, output=output.text(), output_truncated=output.truncated)


# sshd starts a command without a terminal in a session of its own; the wrapper reports that
# session (on Linux) before it becomes the agent's command, so a timeout can kill the whole
# process group. OpenSSH refuses signal requests for root logins, and closing the channel does
# not stop a process that neither reads nor writes.
_WRAPPER = (
    "if read -r _ _ _ _ _ s _ < /proc/self/stat 2>/dev/null; then printf 'hookline-session %s\\n' \"$s\" >&2; fi; exec "
)
_MARK = b"hookline-session "


async def _pump(
    stream: asyncssh.SSHReader[bytes], output: OutputBuffer, session: asyncio.Future[int | None] | None = None
) -> None:
    if session is not None:
        first = await stream.readline()
        if first.startswith(_MARK) and first[len(_MARK) :].strip().isdigit():
            session.set_result(int(first[len(_MARK) :]))
        else:
            session.set_result(None)
            output.add(first)
    while chunk := await stream.read(65536):
        output.add(chunk)


async def _kill(
    conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess[bytes], session: asyncio.Future[int | None]
) -> None:
    with contextlib.suppress(Exception):
        process.send_signal("KILL")
    sid = session.result() if session.done() else None
    if sid:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.run(f"kill -KILL -- -{sid}", check=False), 5)
    process.close()

"""The shell runner: runs the agent's argv (never through a shell); step data arrives as JSON on
stdin and in `HOOKLINE_*` variables, never on the command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

import orjson
from pydantic import Field

from hookline.processes import ChildProcess, spawn
from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.errors import config_error, exit_failure, timed_out
from worker.runners.base import (
    OutputBuffer,
    RunnerContext,
    RunnerOptions,
    agent_options,
    require_command,
    step_context,
    step_env,
)

__all__ = ["ProcessRunner", "ShellOptions", "ShellRunner"]


class ShellOptions(RunnerOptions):
    """Agent `options:` of the shell runner."""

    non_retryable_exit_codes: list[int] = Field(
        default_factory=list, description="Exit codes that mean retrying cannot help (e.g. 2, a usage error)."
    )


ProcessOptionsT = TypeVar("ProcessOptionsT", bound=ShellOptions)


class ProcessRunner(ABC, Generic[ProcessOptionsT]):
    """A step as a local process: the shell runner, and the sandbox, which runs the same argv
    under bubblewrap. A kind says how its agents are checked and what is executed."""

    kind: ClassVar[str]

    def __init__(self, *, output_cap_bytes: int, base_env: Mapping[str, str]) -> None:
        self._cap = output_cap_bytes
        self._base_env = dict(base_env)

    @abstractmethod
    def check(self, agent: Agent) -> ProcessOptionsT: ...

    @abstractmethod
    def argv(self, agent: Agent, options: ProcessOptionsT) -> list[str]:
        """What is executed."""

    async def close(self) -> None:
        """Nothing to release: every step's process is gone when `run` returns."""

    async def run(self, agent: Agent, options: ProcessOptionsT, request: StepRequest) -> StepResult:
        stdin = orjson.dumps(step_context(request))
        env = {**self._base_env, **step_env(agent, request)}
        try:
            # In a process group of its own, so a timeout or cancellation kills everything it
            # started; SIGKILLed with the worker, so a step never runs unsupervised (Temporal
            # retries it on another worker after the heartbeat timeout).
            proc = await spawn(self.argv(agent, options), stdin=stdin, cwd=agent.workdir, env=env)
        except OSError as exc:
            # Which path failed is in `filename`: a missing working directory is a
            # FileNotFoundError just as a missing program is.
            if agent.workdir is not None and exc.filename is not None and str(exc.filename) == str(agent.workdir):
                raise config_error(f"cannot enter working directory {str(agent.workdir)!r}: {exc.strerror}") from exc
            raise config_error(f"cannot run {agent.command[0]!r}: {exc.strerror}") from exc
        try:
            output = await asyncio.wait_for(self._collect(proc), agent.timeout_s)
        except TimeoutError:
            await self._kill_group(proc)
            raise timed_out(agent.timeout_s) from None
        except asyncio.CancelledError:
            await self._kill_group(proc)
            raise
        finally:
            proc.close()
        code = proc.returncode or 0
        if code != 0:
            raise exit_failure(code, output.text(), options.non_retryable_exit_codes)
        return StepResult(exit_code=0, output=output.text(), output_truncated=output.truncated)

    async def _collect(self, proc: ChildProcess) -> OutputBuffer:
        output = OutputBuffer(self._cap)
        # Read to the end even past the cap, so a chatty step is not blocked on a full pipe.
        while chunk := await proc.read(65536):
            output.add(chunk)
        await proc.wait()
        return output

    @staticmethod
    async def _kill_group(proc: ChildProcess) -> None:
        proc.kill_group(signal.SIGKILL)
        with contextlib.suppress(Exception):
            await proc.wait()


class ShellRunner(ProcessRunner[ShellOptions]):
    kind: ClassVar[str] = "shell"

    @classmethod
    def create(cls, context: RunnerContext) -> ShellRunner:
        return cls(output_cap_bytes=context.output_cap_bytes, base_env=context.inherited_env)

    def check(self, agent: Agent) -> ShellOptions:
        options = agent_options(ShellOptions, agent)
        require_command(agent)
        return options

    def argv(self, agent: Agent, options: ShellOptions) -> list[str]:
        return list(agent.command)

"""The shell runner: runs the agent's argv; step data arrives as JSON on stdin and in the
environment, never on the command line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import orjson
from temporalio import activity

from hookline.processes import die_with_parent
from schemas.agents import Agent
from schemas.run import StepRequest, StepResult
from worker.runners.base import StepFailed

__all__ = ["ShellRunner"]


class ShellRunner:
    kind = "shell"

    def __init__(self, *, output_cap_bytes: int, base_env: dict[str, str], heartbeat_s: float = 2.0) -> None:
        self._cap = output_cap_bytes
        self._base_env = base_env
        self._heartbeat_s = heartbeat_s

    async def run(self, agent: Agent, request: StepRequest) -> StepResult:
        if not agent.command:
            raise StepFailed(f"agent {agent.name!r} has no command", retryable=False, kind="Config")
        stdin = orjson.dumps(
            {
                "workflow_id": request.workflow_id,
                "step": request.step,
                "compensation": request.compensation,
                "input": request.input,
                "event": request.event.model_dump(mode="json") if request.event else None,
            }
        )
        env = {
            **self._base_env,
            **agent.env,
            "HOOKLINE_STEP": request.step,
            "HOOKLINE_WORKFLOW_ID": request.workflow_id,
            "HOOKLINE_AGENT": agent.name,
            "HOOKLINE_COMPENSATION": "1" if request.compensation else "0",
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *agent.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=agent.workdir,
                env=env,
                start_new_session=True,
                # A SIGKILLed worker must not leave the step running unsupervised: Temporal will
                # retry it on another worker after the heartbeat timeout.
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        except OSError as exc:
            raise StepFailed(
                f"cannot run {agent.command[0]!r}: {exc.strerror}", retryable=False, kind="Config"
            ) from exc
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            output, truncated = await asyncio.wait_for(self._communicate(proc, stdin), agent.timeout_s)
        except TimeoutError:
            self._kill_group(proc)
            await proc.wait()
            raise StepFailed(f"timed out after {agent.timeout_s:g}s", retryable=True, kind="Timeout") from None
        except asyncio.CancelledError:
            self._kill_group(proc)
            with contextlib.suppress(Exception):
                await proc.wait()
            raise
        finally:
            heartbeats.cancel()
        text = output.decode(errors="replace")
        if proc.returncode != 0:
            raise StepFailed(f"exited with code {proc.returncode}", retryable=True, output=text, kind="ExitCode")
        return StepResult(exit_code=0, output=text, output_truncated=truncated)

    async def _communicate(self, proc: asyncio.subprocess.Process, stdin: bytes) -> tuple[bytes, bool]:
        assert proc.stdin is not None and proc.stdout is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
        proc.stdin.close()
        kept = bytearray()
        truncated = False
        while True:
            chunk = await proc.stdout.read(65536)
            if not chunk:
                break
            room = self._cap - len(kept)
            if room > 0:
                kept += chunk[:room]
            truncated = truncated or len(chunk) > room
        await proc.wait()
        return bytes(kept), truncated

    async def _heartbeats(self) -> None:
        # Heartbeats tell Temporal the worker is alive and are how a cancellation reaches the step.
        while activity.in_activity():
            activity.heartbeat()
            await asyncio.sleep(self._heartbeat_s)

    @staticmethod
    def _kill_group(proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

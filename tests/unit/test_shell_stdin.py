"""A step that never reads its stdin and exits at once still succeeds on its first attempt:
the closed pipe is not the step's failure (retrying it would run a remediation twice)."""

from __future__ import annotations

import asyncio

import uvloop

from schemas.agents import Agent
from schemas.run import StepRequest
from worker.runners.shell import ShellRunner

RUNNER = ShellRunner(output_cap_bytes=65536, base_env={"PATH": "/usr/bin:/bin"})


async def test_a_step_that_ignores_its_stdin_succeeds() -> None:
    agent = Agent(name="quick", command=("true",), timeout_s=10)
    # Far more than a pipe holds: the write outlives the process.
    request = StepRequest(workflow_id="w", step="s", agent="quick", input={"blob": "x" * 4_000_000})
    for _ in range(5):
        assert (await RUNNER.run(agent, request)).exit_code == 0


def test_writing_the_context_to_a_step_that_already_exited_is_not_an_error() -> None:
    # The race, on uvloop as `hookline worker` runs: the process is gone (and its pipe closed)
    # before the context is written; uvloop then raises RuntimeError("... handler is closed").
    async def exited_first() -> str:
        pipe = asyncio.subprocess.PIPE
        proc = await asyncio.create_subprocess_exec("true", stdin=pipe, stdout=pipe)
        await proc.wait()
        await asyncio.sleep(0.05)
        return (await RUNNER._communicate(proc, b'{"input": {}}')).text()

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(exited_first()) == ""
    finally:
        loop.close()

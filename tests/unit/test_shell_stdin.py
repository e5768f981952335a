"""A step that never reads its stdin and exits at once still succeeds on its first attempt:
the closed pipe is not the step's failure (retrying it would run a remediation twice)."""

from __future__ import annotations

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
        assert (await RUNNER.run(agent, RUNNER.check(agent), request)).exit_code == 0


def test_a_step_that_exits_before_reading_its_context_succeeds_on_uvloop() -> None:
    # As `hookline worker` runs. The context is a file in memory, not a pipe: a process that is
    # gone before it is written cannot fail the write (uvloop raised "handler is closed").
    agent = Agent(name="quick", command=("true",), timeout_s=10)
    request = StepRequest(workflow_id="w", step="s", agent="quick", input={"blob": "x" * 4_000_000})

    async def many() -> list[int]:
        return [(await RUNNER.run(agent, RUNNER.check(agent), request)).exit_code for _ in range(5)]

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(many()) == [0] * 5
    finally:
        loop.close()

"""What a step costs the worker: `true` through the real shell runner, against a bare spawn of
`true` on the same loop, in one run.

The figure is the worker process's own CPU per step (user + system, children excluded): what
the runner adds to the process it starts. Wall time per step is printed too, at 1 and at 16
steps at once. The runner's spawn goes through `setpriv --pdeathsig` (the step dies with the
worker), so each step is two execs; the bare spawn is one.

    .venv/bin/python bench/spawn.py [--steps 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.agents import Agent  # noqa: E402
from schemas.run import StepRequest  # noqa: E402
from worker.runners.shell import ShellRunner  # noqa: E402


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(step: Callable[[], Awaitable[None]], steps: int, at_once: int) -> tuple[float, float]:
    """(own CPU ms per step, wall ms per step)."""
    slots = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with slots:
            await step()

    cpu, wall = own_cpu_s(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(steps)))
    return (own_cpu_s() - cpu) / steps * 1000, (time.perf_counter() - wall) / steps * 1000


async def main(args: argparse.Namespace) -> None:
    runner = ShellRunner(output_cap_bytes=65536, base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    agent = Agent(name="quick", command=("true",), timeout_s=30)
    request = StepRequest(workflow_id="bench:spawn", step="s", agent="quick", input={})
    options = runner.check(agent)

    async def through_runner() -> None:
        result = await runner.run(agent, options, request)
        assert result.exit_code == 0

    loop = asyncio.get_running_loop()

    async def bare() -> None:
        # What a hand-written worker would do: Popen in a thread, so the loop never blocks on fork.
        await loop.run_in_executor(None, lambda: subprocess.run(["true"], check=True))

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {type(loop).__module__}")
    print(f"{'':<28}{'worker CPU/step':>16}{'wall/step':>12}")
    for at_once in (1, 16):
        await measure(through_runner, 20, at_once)  # warm-up
        for name, step in (("bare subprocess.run", bare), ("shell runner", through_runner)):
            cpu, wall = await measure(step, args.steps, at_once)
            print(f"{name + f', {at_once} at once':<28}{cpu:>13.2f} ms{wall:>9.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args))

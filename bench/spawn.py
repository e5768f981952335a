"""What a step costs the worker: `true` through the real shell runner, against a bare spawn of
`true` on the same loop, in one run.

The figures are the worker process's own CPU per step (user + system): what the runner adds to
the process it starts; the CPU of the step's processes (children: the wrapper that sets the
parent-death signal, then `true`); and wall time per step, at 1 and at 16 steps at once. The
runner's spawn goes through a wrapper that sets the parent-death signal (the step dies with the
worker), so each step is two execs; the bare spawn is one. The runner is measured with each
wrapper: Hookline's `hookline-die-with-parent` (`make install` builds it) and util-linux
`setpriv`, its fallback.

    .venv/bin/python bench/spawn.py [--steps 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hookline import processes  # noqa: E402
from schemas.agents import Agent  # noqa: E402
from schemas.run import StepRequest  # noqa: E402
from worker.runners.shell import ShellRunner  # noqa: E402
from worker.settings import WorkerOptions  # noqa: E402


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def measure(step: Callable[[], Awaitable[None]], steps: int, at_once: int) -> tuple[float, float, float]:
    """(own CPU ms per step, children's CPU ms per step, wall ms per step)."""
    slots = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with slots:
            await step()

    own, children, wall = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(steps)))
    return (
        (cpu_s(resource.RUSAGE_SELF) - own) / steps * 1000,
        (cpu_s(resource.RUSAGE_CHILDREN) - children) / steps * 1000,
        (time.perf_counter() - wall) / steps * 1000,
    )


async def main(args: argparse.Namespace) -> None:
    # What a worker with default settings passes on to its steps (worker.inherit_env): LANG too,
    # which makes setpriv set up a locale before it execs the step.
    inherit = WorkerOptions.model_fields["inherit_env"].get_default(call_default_factory=True)
    runner = ShellRunner(output_cap_bytes=65536, base_env={k: v for k, v in os.environ.items() if k in inherit})
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

    helper, setpriv = processes.pdeathsig_wrapper(), shutil.which("setpriv")
    if helper is None or os.path.basename(helper) != processes.HELPER or setpriv is None:
        sys.exit(f"needs {processes.HELPER} (make install) and setpriv; found {helper!r} and {setpriv!r}")
    wrappers = {"helper": helper, "setpriv": setpriv}

    def with_wrapper(name: str) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            processes.pdeathsig_wrapper = lambda: wrappers[name]  # type: ignore[assignment]
            await through_runner()

        return step

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {type(loop).__module__}")
    print(f"{'':<36}{'worker CPU/step':>16}{'children CPU/step':>19}{'wall/step':>12}")
    for at_once in (1, 16):
        await measure(through_runner, 20, at_once)  # warm-up
        shapes = (
            ("bare subprocess.run", bare),
            ("shell runner, helper", with_wrapper("helper")),
            ("shell runner, setpriv", with_wrapper("setpriv")),
        )
        for name, step in shapes:
            own, children, wall = await measure(step, args.steps, at_once)
            print(f"{name + f', {at_once} at once':<36}{own:>13.2f} ms{children:>16.2f} ms{wall:>9.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args))

"""Run as a script by test_spawn.py: spawn many steps through the real shell runner on uvloop while
native threads keep entering Python, as the Temporal SDK's core threads do in a worker. Each such
entry makes and drops a thread state under the interpreter's runtime lock without the GIL; a fork
that runs Python in the child while one of them holds it wedges the child and the parent's loop.

    python tests/unit/spawn_stress.py STEPS
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import threading

import uvloop

from schemas.agents import Agent
from schemas.run import StepRequest
from worker.runners.shell import ShellRunner

libc = ctypes.CDLL("libc.so.6", use_errno=True)
THREAD_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, THREAD_START, ctypes.c_void_p]
libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]


@THREAD_START
def enter_python(_: int | None) -> None:
    """A native thread's start routine in Python: a thread state made and dropped per thread."""
    return None


def native_threads(stop: threading.Event) -> None:
    tid = ctypes.c_ulong()
    while not stop.is_set():
        libc.pthread_create(ctypes.byref(tid), None, enter_python, None)
        libc.pthread_join(tid.value, None)


async def spawn_steps(count: int) -> None:
    runner = ShellRunner(output_cap_bytes=65536, base_env={"PATH": "/usr/bin:/bin"})
    agent = Agent(name="quick", command=("true",), timeout_s=30)
    request = StepRequest(workflow_id="w", step="s", agent="quick", input={})
    options = runner.check(agent)
    slots = asyncio.Semaphore(32)

    async def one() -> None:
        async with slots:
            assert (await runner.run(agent, options, request)).exit_code == 0

    await asyncio.gather(*(one() for _ in range(count)))


if __name__ == "__main__":
    stop = threading.Event()
    for _ in range(3):
        threading.Thread(target=native_threads, args=(stop,), daemon=True).start()
    uvloop.run(spawn_steps(int(sys.argv[1])))
    stop.set()
    print("spawned", sys.argv[1], flush=True)

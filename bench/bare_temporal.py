"""The bare Temporal baseline of bench/runs.py: one Python worker process with a one-activity
workflow, and the loop that starts such workflows and waits for their ends.

    worker: .venv/bin/python bench/bare_temporal.py worker --address A --queue Q
    (the loop is `run_loop`, called by bench/runs.py)

Three shapes, the activity
- `noop`: returns at once, on the workflow's own task queue (eager dispatch applies);
- `spawn`: spawns `true` and waits for it, on the workflow's own task queue;
- `spawn-queue`: spawns `true`, on a separate task queue, as Hookline's runner pools do;
and, for reference only, `local-spawn`: spawns `true` as a local activity. The worker polls for
workflow tasks as Hookline's does (`worker.workflow_task_pollers`, `worker.nonsticky_poll_ratio`).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

SHAPES = ("noop", "spawn", "spawn-queue")
#: Not one of the issue's baseline shapes: the activity as a local activity, for reference.
LOCAL = "local-spawn"


@activity.defn
async def noop() -> None:
    return None


@activity.defn
async def spawn_true() -> None:
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()


@workflow.defn(name="BareOne")
class BareOne:
    @workflow.run
    async def run(self, shape: str, queue: str) -> None:
        if shape == LOCAL:
            await workflow.execute_local_activity(spawn_true, start_to_close_timeout=timedelta(seconds=30))
            return
        await workflow.execute_activity(
            noop if shape == "noop" else spawn_true,
            task_queue=queue if shape == "spawn-queue" else None,
            start_to_close_timeout=timedelta(seconds=30),
        )


async def run_loop(client: Client, queue: str, shape: str, n: int, concurrency: int) -> float:
    """Start `n` workflows of `shape` at `concurrency` at a time, each waited for to its end; runs/s."""
    semaphore = asyncio.Semaphore(concurrency)
    tag = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        async with semaphore:
            await client.execute_workflow(
                "BareOne", args=[shape, f"{queue}.activities"], id=f"bare-{tag}-{i}", task_queue=queue
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - started)


async def serve(address: str, queue: str) -> None:
    client = await Client.connect(address)
    # The same workflow task polling as Hookline's worker, so that the baseline is not held back
    # by the SDK's defaults where Hookline is not. (Imported here: the sandbox re-imports this
    # module for the workflow, and the settings' module may not be imported there.)
    from worker.settings import WorkerOptions

    workflows = Worker(
        client,
        task_queue=queue,
        workflows=[BareOne],
        activities=[noop, spawn_true],
        **WorkerOptions().workflow_polling(),
    )
    activities = Worker(client, task_queue=f"{queue}.activities", activities=[spawn_true])
    async with workflows, activities:
        await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["worker"])
    parser.add_argument("--address", required=True)
    parser.add_argument("--queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.queue))

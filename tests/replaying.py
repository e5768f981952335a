"""Replaying a workflow's history in a test that runs beside others: in a thread of its own.

The replayer's wait on Temporal's core cannot be cancelled. A test that ran out of time while a
replay waited (a storm test on a loaded machine, once) left that wait in its event loop, and the
loop's close waited for it for ever: the whole run hung. Here the replay runs on an event loop of
its own in a daemon thread; the test waits for it with a deadline it can abandon."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, WorkflowReplayResult

__all__ = ["replayed"]


async def replayed(replayer: Replayer, history: WorkflowHistory, timeout: float = 120.0) -> WorkflowReplayResult:
    """`replayer.replay_workflow(history)` (which raises on a nondeterministic history), in a
    daemon thread; a replay longer than `timeout` fails with TimeoutError and is left there."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[WorkflowReplayResult] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def replay() -> None:
        result, error = None, None
        try:
            result = asyncio.run(replayer.replay_workflow(history))
        except BaseException as exc:  # handed to the test, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the test's loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=replay, name="replay", daemon=True).start()
    return await asyncio.wait_for(done, timeout)

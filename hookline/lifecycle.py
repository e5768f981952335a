"""The graceful stop every Hookline process shares: SIGTERM or SIGINT sets one event, what a
process waits for at start-up (Kafka, Temporal) is abandoned when that event comes first, and a
background task is stopped by cancelling it and waiting for its end."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["cancel_and_wait", "stop_on_signals", "unless_stopped"]

T = TypeVar("T")


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM and SIGINT set (call it in the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def unless_stopped(awaitable: Awaitable[T], stop: asyncio.Event) -> T | None:
    """What `awaitable` gives, or None (having cancelled it) if `stop` is set first."""
    task = asyncio.ensure_future(awaitable)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    await cancel_and_wait(task)
    return None


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel `task` (None: there is none) and wait for its end, so that nothing of it runs on
    behind whatever stopped it. An exception it ends with other than its cancellation is raised."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

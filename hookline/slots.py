"""The interpreter's workflow task slots, counted where the process that starts runs can see them.

With `triggers.interpreter`, the triggers start runs eagerly: Temporal hands a new run's first
workflow task back with the start, if the interpreter in this process has a free workflow task
slot at that moment (the SDK reserves it before it sends the start). Without one, the run's task
goes through the task queue: a transfer task, a dispatch in matching, a poll and one more write
of the run's state, about 2 ms more of the Temporal server's CPU per run (docs/performance.md).
Under a burst the interpreter's slots are full most of the time, and a third to a half of the
starts went that way.

`WorkflowTaskSlots` is the SDK's fixed number of slots as a custom slot supplier, whose count the
starter can wait on (`free_slot`): a start waits, up to a bound, for a slot to come free, so it
can be eager, and the event waits in Kafka meanwhile rather than in the task queue. Its waits are
first come, first served with the polls' (a run already going still gets its next task); a start
that waited its bound goes through the task queue, where the workers take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from temporalio.worker import (
    CustomSlotSupplier,
    SlotMarkUsedContext,
    SlotPermit,
    SlotReleaseContext,
    SlotReserveContext,
)

__all__ = ["WorkflowTaskSlots"]


@dataclass(eq=False)
class _Waiter:
    """A poll's reservation (it takes the slot) or a start's wait (it is only told of one)."""

    future: asyncio.Future[None]
    takes_slot: bool
    done: bool = field(default=False)


class WorkflowTaskSlots(CustomSlotSupplier):
    """`capacity` workflow task slots. The SDK calls `try_reserve_slot`, `mark_slot_used` and
    `release_slot` from its own threads and `reserve_slot` on the worker's event loop; the counts
    are kept under a lock, and waiters are woken on the loop.

    A start that is told of a free slot (`free_slot`) holds it, as a promise, until its request
    reserves it (the SDK's `try_reserve_slot` as it sends an eager start) or it ends: a poll
    asking meanwhile cannot take it. Promises are not told apart: the SDK reserves again for
    each attempt of a start's request it retries, and such an attempt takes any start's promise
    (or a free slot). The start left without one goes through the task queue, which costs it
    eagerness, never a slot: there are never more promises than starts holding one.

    While the slots stay full (long local steps), waiting would only delay the starts: after a
    wait that ran out, the starts do not wait for `timeout` seconds, unless a slot comes free."""

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("a workflow worker needs at least two workflow task slots")
        self.capacity = capacity
        self._used = 0
        #: Slots promised to starts not yet reserved by them, and the starts holding a promise.
        self._promised = 0
        self._promises = 0
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Until when (the loop's clock) starts do not wait: a wait ran out then.
        self._full_until = 0.0

    @property
    def used(self) -> int:
        """Slots reserved now: polls waiting for a task, and tasks being worked on."""
        return self._used

    @property
    def promised(self) -> int:
        """Slots promised to starts that have not reserved them yet."""
        return self._promised

    # The SDK's side.

    async def reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit:
        self._loop = asyncio.get_running_loop()
        with self._lock:
            if self._free() > 0 and not self._waiters:
                self._used += 1
                return SlotPermit()
        waiter = self._wait(takes_slot=True)
        try:
            await waiter.future
        except asyncio.CancelledError:
            # A worker shutting down cancels its polls' reservations: a slot granted as the
            # cancellation came is given back, and a waiter not yet served leaves the line.
            if waiter.done:
                self._release()
            else:
                waiter.done = True
            raise
        return SlotPermit()

    def try_reserve_slot(self, ctx: SlotReserveContext) -> SlotPermit | None:
        """An eager start's reservation: its promised slot, else a free one."""
        with self._lock:
            if self._promised > 0:
                self._promised -= 1
            elif self._free() <= 0:
                return None
            self._used += 1
        return SlotPermit()

    def mark_slot_used(self, ctx: SlotMarkUsedContext) -> None:
        pass

    def release_slot(self, ctx: SlotReleaseContext) -> None:
        self._release()

    # The starter's side.

    @contextlib.asynccontextmanager
    async def free_slot(self, timeout: float) -> AsyncIterator[bool]:
        """For the block, a slot promised to a start, if one comes free within `timeout` seconds
        (in line with the polls): True if it did, and the start should then ask for it (start
        eagerly). A promise its start did not reserve is given back at the end."""
        promised = await self._promise(timeout)
        try:
            yield promised
        finally:
            if promised:
                self._end_promise()

    async def _promise(self, timeout: float) -> bool:
        loop = self._loop = asyncio.get_running_loop()
        with self._lock:
            if self._free() > 0 and not self._waiters:
                self._promised += 1
                self._promises += 1
                self._full_until = 0.0
                return True
        if timeout <= 0 or loop.time() < self._full_until:
            return False
        waiter = self._wait(takes_slot=False)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except TimeoutError:
            self._leave(waiter)
            self._full_until = loop.time() + timeout
            return False
        except asyncio.CancelledError:
            self._leave(waiter)
            raise
        return True

    def _leave(self, waiter: _Waiter) -> None:
        """A start's wait ends without its slot: out of the line, or its promise given back if it
        was served as the time ran out."""
        if waiter.done:
            self._end_promise()
        waiter.done = True

    def _end_promise(self) -> None:
        """A start that held a promise ends: at most one promise per start still going stays,
        so one its request did not reserve is given back (and one another start's retried
        request took, the class's docstring, is not given twice)."""
        with self._lock:
            self._promises -= 1
            unasked = self._promised - self._promises
            self._promised = min(self._promised, self._promises)
        if unasked > 0:
            self._wake_soon()

    # Both.

    def _free(self) -> int:
        return self.capacity - self._used - self._promised

    def _wait(self, *, takes_slot: bool) -> _Waiter:
        waiter = _Waiter(asyncio.get_running_loop().create_future(), takes_slot)
        with self._lock:
            self._waiters.append(waiter)
        # A slot may have come free between the check and the append.
        self._wake()
        return waiter

    def _release(self) -> None:
        with self._lock:
            self._used -= 1
        self._wake_soon()

    def _wake_soon(self) -> None:
        """`_wake` on the loop: now if this is it, else as soon as it turns."""
        loop = self._loop
        if not self._waiters or loop is None:
            return
        if _on(loop):
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        """Serve the waiters in their order while slots are free (on the loop): a poll's
        reservation takes its slot, a start's is promised it."""
        with self._lock:
            free = self._free()
            served: list[_Waiter] = []
            while free > 0 and self._waiters:
                waiter = self._waiters.popleft()
                if waiter.done:  # timed out or cancelled
                    continue
                waiter.done = True
                free -= 1
                if waiter.takes_slot:
                    self._used += 1
                else:
                    self._promised += 1
                    self._promises += 1
                    self._full_until = 0.0
                served.append(waiter)
        for waiter in served:
            if not waiter.future.done():
                waiter.future.set_result(None)


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

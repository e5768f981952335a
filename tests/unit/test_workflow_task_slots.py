"""hookline.slots: the interpreter's workflow task slots, which the SDK reserves and releases from
its own threads and the starter waits on to start runs eagerly."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hookline.slots import WorkflowTaskSlots

# The SDK passes contexts the supplier does not read.
CTX: Any = None


def full(capacity: int) -> WorkflowTaskSlots:
    """Slots every one of which is reserved (tasks being worked on)."""
    slots = WorkflowTaskSlots(capacity)
    for _ in range(capacity):
        assert slots.try_reserve_slot(CTX) is not None
    return slots


def release_from_another_thread(slots: WorkflowTaskSlots) -> None:
    thread = threading.Thread(target=slots.release_slot, args=(CTX,))
    thread.start()
    thread.join()


async def test_try_reserve_takes_free_slots_only_and_a_release_frees_one() -> None:
    slots = WorkflowTaskSlots(3)
    assert [slots.try_reserve_slot(CTX) is not None for _ in range(4)] == [True, True, True, False]
    assert slots.used == 3
    slots.release_slot(CTX)
    assert slots.used == 2
    assert slots.try_reserve_slot(CTX) is not None
    assert slots.try_reserve_slot(CTX) is None


async def test_a_poll_waits_for_a_slot_and_gets_the_one_released_from_the_sdks_thread() -> None:
    slots = WorkflowTaskSlots(2)
    await slots.reserve_slot(CTX)
    assert slots.try_reserve_slot(CTX) is not None
    poll = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0.01)
    assert not poll.done()
    release_from_another_thread(slots)
    await asyncio.wait_for(poll, 1)
    assert slots.used == 2  # the released slot went straight to the poll


async def promised(slots: WorkflowTaskSlots, timeout: float) -> bool:
    """Whether a start waiting up to `timeout` is promised a slot (then left unasked for)."""
    async with slots.free_slot(timeout) as eager:
        return eager


async def test_a_start_is_promised_a_free_slot_at_once_and_its_request_takes_it() -> None:
    slots = WorkflowTaskSlots(2)
    async with slots.free_slot(0) as eager:
        assert eager is True
        assert (slots.used, slots.promised) == (0, 1)
        assert slots.try_reserve_slot(CTX) is not None  # the start's own reservation, by the SDK
        assert (slots.used, slots.promised) == (1, 0)
    assert (slots.used, slots.promised) == (1, 0)


async def test_a_promise_keeps_the_slot_from_polls_until_its_start_ends_without_asking() -> None:
    slots = WorkflowTaskSlots(2)
    slots.try_reserve_slot(CTX)
    async with slots.free_slot(0) as eager:
        assert eager
        poll = asyncio.ensure_future(slots.reserve_slot(CTX))
        await asyncio.sleep(0.01)
        assert not poll.done()  # the last slot is the start's
    # The start ended without the eager request (it failed before sending): the poll gets it.
    await asyncio.wait_for(poll, 1)
    assert (slots.used, slots.promised) == (2, 0)


async def test_a_start_waits_for_a_slot_and_gives_up_after_its_bound() -> None:
    slots = full(2)
    assert await promised(slots, 0) is False
    waiting = asyncio.ensure_future(promised(slots, 5))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    release_from_another_thread(slots)
    assert await asyncio.wait_for(waiting, 1) is True
    assert (slots.used, slots.promised) == (1, 0)
    assert slots.try_reserve_slot(CTX) is not None
    assert await promised(slots, 0.05) is False
    assert (slots.used, slots.promised) == (2, 0)


async def test_polls_and_starts_are_served_in_their_order() -> None:
    slots = full(2)
    poll = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0)
    start = asyncio.ensure_future(promised(slots, 5))
    await asyncio.sleep(0.01)
    slots.release_slot(CTX)
    await asyncio.sleep(0.01)
    assert poll.done() and not start.done()  # the poll came first: it has the slot
    slots.release_slot(CTX)
    assert await asyncio.wait_for(start, 1) is True


async def test_a_start_that_timed_out_leaves_the_line_and_the_next_waiter_is_served() -> None:
    slots = full(2)
    assert await promised(slots, 0.01) is False
    poll = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0.01)
    slots.release_slot(CTX)
    await asyncio.wait_for(poll, 1)
    assert (slots.used, slots.promised) == (2, 0)


async def test_many_starts_waiting_are_promised_one_slot_each() -> None:
    slots = full(4)
    told: list[int] = []

    async def start(i: int) -> None:
        async with slots.free_slot(5) as eager:
            assert eager
            told.append(i)
            await asyncio.sleep(0.01)
            assert slots.try_reserve_slot(CTX) is not None  # never refused: the slot was kept for it

    starts = [asyncio.ensure_future(start(i)) for i in range(10)]
    await asyncio.sleep(0.01)
    for _ in range(10):
        release_from_another_thread(slots)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*starts), 5)
    assert told == list(range(10))
    assert (slots.used, slots.promised) == (4, 0)


async def test_a_cancelled_poll_keeps_no_slot() -> None:
    slots = full(2)
    # Cancelled while waiting: it leaves the line.
    waiting = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slots.release_slot(CTX)
    assert slots.used == 1
    # Cancelled in the same turn of the loop as its slot was granted: the slot is given back.
    slots.try_reserve_slot(CTX)
    granted = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0.01)
    slots.release_slot(CTX)  # grants the slot to `granted` (on the loop: at once)
    granted.cancel()
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert slots.used == 1
    assert slots.try_reserve_slot(CTX) is not None


async def test_releases_from_many_threads_while_polls_wait_lose_no_slot() -> None:
    capacity = 8
    slots = WorkflowTaskSlots(capacity)
    for _ in range(capacity):
        slots.try_reserve_slot(CTX)
    polls = [asyncio.ensure_future(slots.reserve_slot(CTX)) for _ in range(50)]
    await asyncio.sleep(0.01)
    threads = [threading.Thread(target=slots.release_slot, args=(CTX,)) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    await asyncio.wait_for(asyncio.gather(*polls), 5)
    assert slots.used == capacity


def test_a_worker_needs_two_slots() -> None:
    with pytest.raises(ValueError, match="at least two"):
        WorkflowTaskSlots(1)


async def test_a_retried_request_taking_a_waiting_starts_promise_never_adds_a_slot() -> None:
    """The SDK reserves again for each attempt of a start it retries: such an attempt may take
    the promise of another start, which then leaves (here cancelled as it was served)."""
    slots = WorkflowTaskSlots(2)
    slots.try_reserve_slot(CTX)
    async with slots.free_slot(0) as eager:  # start A
        assert eager
        assert slots.try_reserve_slot(CTX) is not None  # A's first attempt
        b = asyncio.ensure_future(promised(slots, 5))  # start B waits
        await asyncio.sleep(0.01)
        slots.release_slot(CTX)  # A's first attempt failed: its slot goes to B, as a promise
        assert slots.try_reserve_slot(CTX) is not None  # A's retry takes that promise
        b.cancel()  # B leaves in the same turn as it was served
        with pytest.raises(asyncio.CancelledError):
            await b
        assert slots.promised == 0
        slots.release_slot(CTX)  # A's run's task ends
    slots.release_slot(CTX)
    assert (slots.used, slots.promised) == (0, 0)
    assert [slots.try_reserve_slot(CTX) is not None for _ in range(3)] == [True, True, False]


async def test_a_start_served_as_it_is_cancelled_gives_its_promise_back() -> None:
    slots = full(2)
    start = asyncio.ensure_future(promised(slots, 5))
    await asyncio.sleep(0.01)
    slots.release_slot(CTX)  # served at once (on the loop)
    assert slots.promised == 1
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert slots.promised == 0
    assert slots.try_reserve_slot(CTX) is not None


async def test_a_new_poll_does_not_jump_the_line_for_a_slot_freed_by_another_thread() -> None:
    slots = full(2)
    first = asyncio.ensure_future(slots.reserve_slot(CTX))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(slots.reserve_slot(CTX))  # its first step runs before the wake-up
    release_from_another_thread(slots)  # frees a slot; the loop is told after `second` asks
    await asyncio.sleep(0.01)
    assert first.done() and not second.done()
    slots.release_slot(CTX)
    await asyncio.wait_for(second, 1)


async def test_after_a_wait_ran_out_starts_do_not_wait_until_a_slot_comes_free() -> None:
    slots = full(2)
    assert await promised(slots, 0.05) is False
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await promised(slots, 5) is False  # the slots stay full: no second wait
    assert loop.time() - began < 1
    slots.release_slot(CTX)
    assert await promised(slots, 5) is True  # a slot came free
    slots.try_reserve_slot(CTX)
    waiting = asyncio.ensure_future(promised(slots, 5))  # and starts wait again
    await asyncio.sleep(0.01)
    assert not waiting.done()
    slots.release_slot(CTX)
    assert await asyncio.wait_for(waiting, 1) is True

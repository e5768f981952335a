"""What a process waits for at start-up is abandoned when it is asked to stop first."""

from __future__ import annotations

import asyncio

from hookline.lifecycle import unless_stopped


async def test_the_awaited_result_when_it_comes_first() -> None:
    async def connect() -> str:
        await asyncio.sleep(0.01)
        return "client"

    assert await unless_stopped(connect(), asyncio.Event()) == "client"


async def test_none_and_the_wait_cancelled_when_the_stop_comes_first() -> None:
    cancelled = asyncio.Event()

    async def connect_for_ever() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, stop.set)
    assert await asyncio.wait_for(unless_stopped(connect_for_ever(), stop), 5) is None
    assert cancelled.is_set()

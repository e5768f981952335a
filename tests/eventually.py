"""`eventually`: the tests' one way to wait until something holds."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    what: str | Callable[[], str],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = 10.0,
    interval: float = 0.05,
    retrying: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> T:
    """The first value of `check()` (awaited if it returns an awaitable) that `until` holds for
    (by default: the first truthy one), `check` called every `interval` seconds. After `timeout`
    seconds without one: AssertionError "waited … for `what`" with the last value (or exception)
    seen. An exception of a `retrying` type counts as "not yet"; any other is raised at once.

    `what` completes "waited 10 s for …": "the gateway to be ready", "a run of incident-1"; a
    callable is called then, so that it can tell what was seen by that time (a log's tail).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except retrying as exc:
            last: object = exc
        else:
            if until(value):  # type: ignore[arg-type]  # awaited above when it was an awaitable
                return value  # type: ignore[return-value]
            last = value
        remaining = deadline - loop.time()
        if remaining <= 0:
            shown = repr(last)
            shown = shown if len(shown) <= 500 else shown[:500] + "..."
            awaited = what() if callable(what) else what
            raise AssertionError(f"waited {timeout:g} s for {awaited}; the last check gave {shown}")
        await asyncio.sleep(min(interval, remaining))

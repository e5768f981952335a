"""The one retry loop: what it retries, how long it waits, and when it gives up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from hookline.retry import Backoff, Stopped, retry

QUICK = Backoff(first_s=0.001, max_s=0.004)


def failing(times: int, error: Exception, result: str = "done") -> tuple[list[int], Callable[[], Awaitable[str]]]:
    """An attempt that raises `error` its first `times` calls, then returns `result`."""
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise error
        return result

    return calls, attempt


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        (Backoff(first_s=0.2, max_s=5.0), [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]),
        (Backoff(first_s=10.0, max_s=600.0), [10, 20, 40, 80, 160, 320, 600]),
    ],
)
def test_the_wait_doubles_from_the_first_up_to_the_cap(backoff: Backoff, delays: list[float]) -> None:
    assert [backoff.delay(n) for n in range(1, 8)] == pytest.approx(delays)


def test_a_long_run_of_failures_waits_the_cap() -> None:
    assert Backoff(first_s=0.1, max_s=10.0).delay(100_000) == 10.0


def test_jitter_spreads_each_wait_around_its_nominal_value() -> None:
    waits = {Backoff(first_s=1.0, max_s=1.0, jitter=0.5).delay(1) for _ in range(200)}
    assert min(waits) >= 0.5 and max(waits) <= 1.5 and len(waits) > 10


async def test_a_failure_it_may_retry_is_tried_again_until_the_attempt_succeeds() -> None:
    calls, attempt = failing(3, OSError("refused"))
    retries: list[None] = []
    result = await retry(
        attempt,
        backoff=QUICK,
        retry_on=(OSError,),
        message="down",
        on_retry=lambda: retries.append(None),
    )
    assert (result, len(calls), len(retries)) == ("done", 4, 3)


async def test_a_failure_it_may_not_retry_propagates_at_once() -> None:
    calls, attempt = failing(1, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        await retry(attempt, backoff=QUICK, retry_on=OSError, message="down")
    assert len(calls) == 1


async def test_a_test_of_the_exception_decides_what_is_retried() -> None:
    calls, attempt = failing(2, OSError("transient"))
    result = await retry(
        attempt,
        backoff=QUICK,
        retry_on=lambda exc: "transient" in str(exc),
        message="down",
    )
    assert (result, len(calls)) == ("done", 3)


async def test_the_last_failure_propagates_after_the_attempts_allowed() -> None:
    calls, attempt = failing(10, OSError("still down"))
    with pytest.raises(OSError, match="still down"):
        await retry(attempt, backoff=QUICK, retry_on=OSError, message="down", attempts=4)
    assert len(calls) == 4


async def test_stopping_ends_the_wait_with_stopped_a_cancellation() -> None:
    stopping = asyncio.Event()
    calls, attempt = failing(100, OSError("down"))
    waiting = asyncio.create_task(
        retry(attempt, backoff=Backoff(first_s=30.0, max_s=30.0), retry_on=OSError, message="down", stopping=stopping)
    )
    await asyncio.sleep(0.01)
    stopping.set()
    with pytest.raises(Stopped):
        await asyncio.wait_for(waiting, 1.0)
    assert len(calls) == 1
    assert issubclass(Stopped, asyncio.CancelledError)


async def test_once_stopping_a_failure_is_not_tried_again_but_a_first_attempt_is_made() -> None:
    stopping = asyncio.Event()
    stopping.set()
    calls, attempt = failing(0, OSError("down"))
    assert await retry(attempt, backoff=QUICK, retry_on=OSError, message="down", stopping=stopping) == "done"
    calls, attempt = failing(1, OSError("down"))
    with pytest.raises(Stopped):
        await retry(attempt, backoff=QUICK, retry_on=OSError, message="down", stopping=stopping)
    assert len(calls) == 1


async def test_the_last_failure_propagates_once_the_time_allowed_is_spent() -> None:
    calls, attempt = failing(1000, OSError("still down"))
    started = asyncio.get_running_loop().time()
    with pytest.raises(OSError, match="still down"):
        await retry(attempt, backoff=Backoff(first_s=0.02, max_s=0.02), retry_on=OSError, message="down", within_s=0.2)
    assert asyncio.get_running_loop().time() - started < 0.2 and 5 <= len(calls) <= 11

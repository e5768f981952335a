"""Retrying with backoff: the one retry loop of Hookline.

Whatever waits for a dependency to come back (a Kafka producer starting, the definition store
loading, Temporal taking a start, the schedule ticker restarting, a definition write whose claim
lost, a followed topic's failed read, a broker or Temporal server starting up) calls `retry` with
its own `Backoff`, the failures it may retry, and what to log. Faults it may not retry propagate at
once; so does the last failure once `attempts` or `within_s` run out; the service stopping ends
the waiting (`Stopped`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hookline.logging import get_logger

__all__ = ["Backoff", "Stopped", "retry"]

log = get_logger(__name__)

T = TypeVar("T")

#: Exception classes, or a test of the exception: which failures `retry` may try again.
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between attempts: `first_s`, doubling up to `max_s`. With `jitter` j, each wait is
    drawn between (1 - j) and (1 + j) times that, so contending writers do not retry in step."""

    first_s: float
    max_s: float
    jitter: float = 0.0

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1: after the first)."""
        # The exponent is bounded: 2**1100 does not fit in a float.
        nominal = min(self.max_s, self.first_s * 2.0 ** min(max(failures - 1, 0), 64))
        if not self.jitter:
            return nominal
        return nominal * (1 - self.jitter + 2 * self.jitter * secrets.randbelow(1001) / 1000)


class Stopped(asyncio.CancelledError):
    """`retry` gave up because the service is stopping: a cancellation, so work in hand is left
    as it was (a record stays uncommitted), never failed."""


def _retryable(exc: Exception, retry_on: RetryOn) -> bool:
    if isinstance(retry_on, type | tuple):
        return isinstance(exc, retry_on)
    return retry_on(exc)


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    retry_on: RetryOn,
    message: str,
    attempts: int | None = None,
    within_s: float | None = None,
    stopping: asyncio.Event | None = None,
    on_retry: Callable[[], None] | None = None,
    level: int = logging.WARNING,
    **fields: object,
) -> T:
    """`await attempt()` until it returns, and return what it returns.

    A failure `retry_on` accepts is logged (`message`, the error, `retry_in_s`, `fields`) at
    `level`, reported to `on_retry`, and tried again after the backoff's delay; any other
    failure propagates, and so does the last one after `attempts` in all, or once the next
    attempt would start more than `within_s` after the first (None: no limit).
    Once `stopping` is set, a failure is not tried again, nor is a wait finished: `Stopped`.
    """
    failures = 0
    deadline = None if within_s is None else time.monotonic() + within_s
    while True:
        try:
            return await attempt()
        except Exception as exc:
            failures += 1
            if not _retryable(exc, retry_on) or (attempts is not None and failures >= attempts):
                raise
            delay = backoff.delay(failures)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            log.log(level, message, error=str(exc) or type(exc).__name__, retry_in_s=round(delay, 3), **fields)
            if on_retry is not None:
                on_retry()
        if stopping is None:
            await asyncio.sleep(delay)
        elif stopping.is_set() or await _set_within(stopping, delay):
            raise Stopped(f"stopping: {message}")


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True

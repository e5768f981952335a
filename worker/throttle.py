"""A lane's throttle (docs/flow-control.md): at most `limit` starts per `period`, and after a quiet
time up to `burst` more at once.

Two rules hold together. A sliding window: no `period` holds more than `limit + burst` starts.
A token bucket of `limit + burst` tokens, refilled at `limit` per `period`, one token per start:
the sustained rate stays `limit` per `period`, and the `burst` extra tokens come back only while
the lane starts fewer than that. With `burst` 0 the bucket never binds before the window does, so
the throttle is the plain window: `limit` at once, the next ones when the oldest leave it.

Pure and clock-free (every call is given `now`), so the lane can keep it in its replayed state and
carry it over when it continues as new.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Rate", "ThrottleState"]

#: A wait shorter than this is none (a timer must be longer than zero; timers are milliseconds).
_NOW = timedelta(milliseconds=1)
#: Tokens short of a whole one by less than this count as whole (a wait under `_NOW` is none).
_SLACK = 1e-6


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period_s: float
    burst: int = 0

    @property
    def capacity(self) -> int:
        return self.limit + self.burst


class ThrottleState:
    """The starts within the window and the bucket's tokens (None: full) as of `tokens_at`."""

    def __init__(
        self, starts: Iterable[datetime] = (), tokens: float | None = None, tokens_at: datetime | None = None
    ) -> None:
        self.starts: deque[datetime] = deque(starts)
        self.tokens = tokens
        self.tokens_at = tokens_at

    def wait(self, rate: Rate, now: datetime) -> timedelta | None:
        """How long until the next start is allowed; None: it is now. Changes nothing (the lane's
        query asks it too)."""
        period = timedelta(seconds=rate.period_s)
        recent = [start for start in self.starts if start > now - period]
        waits = [timedelta(0)]
        if len(recent) >= rate.capacity:  # the window is full until enough of them leave it
            waits.append(recent[len(recent) - rate.capacity] + period - now)
        missing = 1.0 - self._level(rate, now)
        if missing > 0:
            waits.append(timedelta(seconds=missing * rate.period_s / rate.limit))
        wait = max(waits)
        return wait if wait >= _NOW else None

    def allowance(self, rate: Rate, now: datetime) -> int:
        """How many starts it allows at `now`, one right after the other (0: `wait` says how
        long until one). Changes nothing."""
        if self.wait(rate, now) is not None:
            return 0
        period = timedelta(seconds=rate.period_s)
        recent = sum(1 for start in self.starts if start > now - period)
        return max(1, min(rate.capacity - recent, int(self._level(rate, now) + _SLACK)))

    def take(self, rate: Rate, now: datetime) -> None:
        """Count a start at `now`."""
        period = timedelta(seconds=rate.period_s)
        while self.starts and self.starts[0] <= now - period:
            self.starts.popleft()
        self.starts.append(now)
        self.tokens, self.tokens_at = self._level(rate, now) - 1.0, now

    def _level(self, rate: Rate, now: datetime) -> float:
        if self.tokens is None or self.tokens_at is None:
            return float(rate.capacity)
        refilled = (now - self.tokens_at).total_seconds() * rate.limit / rate.period_s
        return min(float(rate.capacity), self.tokens + refilled)

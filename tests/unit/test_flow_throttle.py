"""A lane's throttle on its own (worker/throttle.py): `limit` starts per `period`, and `burst`
more at once after a quiet time, never more than `limit + burst` in a period, the sustained rate
`limit` per `period`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from worker.throttle import Rate, ThrottleState

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def drain(rate: Rate, events: int, *, state: ThrottleState | None = None, at: datetime = T0) -> list[datetime]:
    """Start `events` waiting events as soon as the throttle lets each one (as the lane does:
    start while it may, else sleep for the wait it names)."""
    state = state or ThrottleState()
    starts, now = [], at
    while len(starts) < events:
        wait = state.wait(rate, now)
        if wait is None:
            state.take(rate, now)
            starts.append(now)
        else:
            now += wait
    return starts


def offsets(starts: list[datetime]) -> list[float]:
    return [round((s - T0).total_seconds(), 3) for s in starts]


def most_in_a_period(starts: list[datetime], period_s: float) -> int:
    return max(sum(1 for t in starts if s <= t < s + timedelta(seconds=period_s)) for s in starts)


def test_without_burst_limit_start_at_once_and_the_next_when_the_oldest_leave_the_period() -> None:
    starts = drain(Rate(limit=3, period_s=2), 9)
    assert offsets(starts) == [0, 0, 0, 2, 2, 2, 4, 4, 4]


def test_a_burst_starts_limit_plus_burst_at_once_then_holds_the_rate() -> None:
    rate = Rate(limit=10, period_s=2, burst=5)
    starts = drain(rate, 100)
    assert offsets(starts)[:15] == [0] * 15  # the burst
    assert offsets(starts)[15:25] == [2] * 10  # the window is free again, the bucket holds 10
    assert most_in_a_period(starts, 2) == 15
    # Sustained: after the burst, never more than `limit` per `period` on average.
    for index in range(15, 100):
        assert (starts[index] - T0).total_seconds() >= (index - 15 + 1) * 2 / 10 - 1e-6


def test_the_burst_comes_back_only_after_a_quiet_time() -> None:
    rate = Rate(limit=2, period_s=1, burst=4)
    state = ThrottleState()
    first = drain(rate, 6, state=state)
    assert offsets(first) == [0] * 6
    # Half the refill time later the bucket holds half of it: 3 tokens, not 6.
    again = drain(rate, 3, state=state, at=T0 + timedelta(seconds=1.5))
    assert offsets(again) == [1.5, 1.5, 1.5]
    assert state.wait(rate, T0 + timedelta(seconds=1.5)) is not None
    # After a full quiet refill (capacity / rate = 3 s) the whole burst is back.
    assert offsets(drain(rate, 6, state=state, at=T0 + timedelta(seconds=5))) == [5] * 6


@pytest.mark.parametrize("seed", range(20))
def test_with_burst_zero_the_throttle_is_the_plain_window_whatever_the_arrivals(seed: int) -> None:
    """Random arrivals: a burst of 0 starts exactly when a sliding window of `limit` per `period`
    alone would (the bucket never binds first)."""
    chance = random.Random(seed)
    limit, period = chance.randint(1, 5), chance.choice([0.5, 1.0, 2.0])
    arrivals = sorted(T0 + timedelta(milliseconds=chance.randint(0, 20_000)) for _ in range(chance.randint(1, 60)))
    rate, state = Rate(limit=limit, period_s=period), ThrottleState()
    window: list[datetime] = []
    for arrival in arrivals:
        now = max(arrival, window[-1] if window else arrival)
        recent = [s for s in window if s > now - timedelta(seconds=period)]
        expected = now if len(recent) < limit else recent[-limit] + timedelta(seconds=period)
        waited = now + (state.wait(rate, now) or timedelta(0))
        assert waited == expected
        state.take(rate, waited)
        window.append(waited)


def test_a_wait_changes_nothing_and_the_state_carries_over() -> None:
    rate = Rate(limit=1, period_s=10, burst=1)
    state = ThrottleState()
    drain(rate, 2, state=state)
    before = (list(state.starts), state.tokens, state.tokens_at)
    for _ in range(3):
        assert state.wait(rate, T0 + timedelta(seconds=1)) == timedelta(seconds=9)
    assert (list(state.starts), state.tokens, state.tokens_at) == before
    carried = ThrottleState(state.starts, state.tokens, state.tokens_at)
    assert carried.wait(rate, T0 + timedelta(seconds=1)) == state.wait(rate, T0 + timedelta(seconds=1))


@pytest.mark.parametrize("seed", range(10))
def test_the_allowance_is_what_starts_one_after_the_other_at_that_moment(seed: int) -> None:
    """As many starts as `allowance` names, taken at one moment, are each allowed by `wait`; it
    names none exactly when `wait` names a wait, and a fresh throttle allows `limit + burst`."""
    chance = random.Random(seed)
    rate = Rate(limit=chance.randint(1, 6), period_s=chance.choice([1.0, 2.0]), burst=chance.randint(0, 4))
    state, now = ThrottleState(), T0
    for _ in range(40):
        now += timedelta(milliseconds=chance.randint(0, 1500))
        allowed = state.allowance(rate, now)
        assert (allowed == 0) == (state.wait(rate, now) is not None)
        for _ in range(chance.randint(0, allowed)):
            assert state.wait(rate, now) is None
            state.take(rate, now)
    fresh = ThrottleState()
    assert fresh.allowance(rate, T0) == rate.capacity
    for _ in range(rate.capacity):
        fresh.take(rate, T0)
    assert fresh.allowance(rate, T0) == 0

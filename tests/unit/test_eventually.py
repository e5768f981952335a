"""`eventually`, the tests' one polling loop."""

from __future__ import annotations

import itertools

import pytest

from tests.eventually import eventually


async def test_returns_the_first_truthy_value_of_the_check() -> None:
    values = iter([0, None, "", "ready", "later"])
    assert await eventually(lambda: next(values), "a value", interval=0) == "ready"


async def test_awaits_a_check_that_returns_an_awaitable() -> None:
    calls = itertools.count()

    async def check() -> int:
        return next(calls)

    assert await eventually(check, "a second call", interval=0) == 1


async def test_until_decides_which_value_is_the_one() -> None:
    values = iter([1, 2, 3, 4])
    assert await eventually(lambda: next(values), "3", until=lambda n: n >= 3, interval=0) == 3


async def test_says_what_it_waited_for_and_what_it_saw_last() -> None:
    with pytest.raises(AssertionError, match=r"waited 0.05 s for the gateway to be ready; the last check gave 503"):
        await eventually(lambda: 503, "the gateway to be ready", until=lambda s: s == 200, timeout=0.05)


async def test_what_may_be_told_at_the_failure() -> None:
    log = ["starting"]

    def check() -> bool:
        log.append("still starting")
        return False

    with pytest.raises(AssertionError, match=r"for the worker; its log: starting, still starting"):
        await eventually(check, lambda: f"the worker; its log: {', '.join(log[:2])}", timeout=0.01)


async def test_retries_the_exceptions_it_is_told_to() -> None:
    attempts = iter([ConnectionError("refused"), ConnectionError("refused"), True])

    def check() -> bool:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await eventually(check, "a connection", interval=0, retrying=ConnectionError) is True


async def test_reports_the_last_retried_exception() -> None:
    def check() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(AssertionError, match=r"the last check gave ConnectionError\('refused'\)"):
        await eventually(check, "a connection", timeout=0.01, retrying=ConnectionError)


async def test_any_other_exception_is_raised_at_once() -> None:
    def check() -> bool:
        raise KeyError("steps")

    with pytest.raises(KeyError):
        await eventually(check, "a step", timeout=10)

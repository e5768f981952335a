"""The contract every runner kind keeps, run through the real step activity (its error
classification included) against each runner's real back end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from temporalio.exceptions import ApplicationError

from tests.integration.runners.harness import CAP, INPUT, Harness, cleanup_sleepers, sleep_token, wait_until

KINDS = ["shell", "sandbox", "http", "ssh", "container", "kubernetes"]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest) -> Harness:
    h: Harness = request.getfixturevalue(f"{request.param}_harness")
    return h


@pytest.fixture
def token() -> Iterator[str]:
    token = sleep_token()
    yield token
    cleanup_sleepers(token)


async def test_success_returns_the_output_and_the_step_gets_its_input_as_data(harness: Harness) -> None:
    result = await harness.run(harness.agent("echo", ""))
    assert result.exit_code == 0
    assert result.data["input"] == INPUT
    assert result.data["step"] == "contract"


async def test_failure_is_a_retryable_typed_error(harness: Harness) -> None:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(harness.agent("fail", ""))
    assert failed.value.type in {"ExitCode", "HttpStatus"}
    assert not failed.value.non_retryable
    assert failed.value.details[0]["attempt"] == 1


async def test_a_step_over_its_timeout_is_stopped_and_reported(harness: Harness, token: str) -> None:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(harness.agent("slow", token))
    assert (failed.value.type, failed.value.non_retryable) == ("Timeout", False)
    assert await wait_until(lambda: _stopped(harness, token), 15)


async def test_cancelling_a_step_stops_what_it_started(harness: Harness, token: str) -> None:
    agent = harness.agent("slow", token).model_copy(update={"timeout_s": 60})
    env = harness.environment()
    step = asyncio.create_task(harness.run(agent, env))
    assert await wait_until(lambda: harness.running(token), 30)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    assert await wait_until(lambda: _stopped(harness, token), 15)


async def test_the_runner_heartbeats_while_the_step_runs(harness: Harness, token: str) -> None:
    with pytest.raises(ApplicationError):
        await harness.run(harness.agent("slow", token))
    assert len(harness.heartbeats) >= 3


async def test_large_output_is_capped_and_marked_truncated(harness: Harness) -> None:
    result = await harness.run(harness.agent("flood", ""))
    assert result.output_truncated
    assert 0 < len(result.output.encode()) <= CAP


async def test_bad_configuration_fails_at_once_without_retries(harness: Harness) -> None:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(harness.agent("bad_config", ""))
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)


async def _stopped(harness: Harness, token: str) -> bool:
    return not await harness.running(token)

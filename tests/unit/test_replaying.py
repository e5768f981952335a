"""`tests.replaying.replayed` hands the replay's outcome to the test: its result, or its failure."""

from __future__ import annotations

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.replay.test_replay_histories import HISTORIES, load
from tests.replaying import replayed
from worker.lane import HooklineLane
from worker.workflow import HooklineRun

HISTORY = HISTORIES / "0.1.0" / "sequential" / "run-1.json"


async def test_a_replay_that_holds_returns_its_result() -> None:
    replayer = Replayer(workflows=[HooklineRun], data_converter=pydantic_data_converter)
    result = await replayed(replayer, load(HISTORY))
    assert result.replay_failure is None


async def test_a_replay_that_fails_raises_in_the_test() -> None:
    replayer = Replayer(workflows=[HooklineLane], data_converter=pydantic_data_converter)  # not the run's workflow
    with pytest.raises(Exception, match="HooklineRun"):
        await replayed(replayer, load(HISTORY))

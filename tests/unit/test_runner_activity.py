"""The step activity's classification of steps it cannot run here."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from schemas.agents import Agent, AgentCatalog
from schemas.run import StepRequest
from worker.activities import StepActivities


async def test_a_step_for_a_runner_not_served_here_is_retried_elsewhere() -> None:
    agents = AgentCatalog(agents={"remote": Agent(name="remote", runner="ssh", pool="edge")})
    activities = StepActivities(agents, {}, inline_runners=frozenset())
    request = StepRequest(workflow_id="wf", step="deploy", agent="remote", input={})
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.run_step, request)
    assert (failed.value.type, failed.value.non_retryable) == ("UnknownRunner", False)

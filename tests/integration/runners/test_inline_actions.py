"""Inline actions carry runner options like agents do, and run only on the kinds a worker allows."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from yarl import URL

from schemas.agents import AgentCatalog
from schemas.run import StepRequest, StepResult
from schemas.workflow import parse_definition
from tests.integration.runners.conftest import AgentEndpoints
from tests.integration.runners.harness import Harness
from worker.activities import StepActivities


def inline_step(url: URL) -> StepRequest:
    definition = parse_definition(
        {
            "name": "inline",
            "steps": [{"name": "call", "action": {"runner": "http", "options": {"url": str(url), "body": "input"}}}],
        }
    )
    return StepRequest(workflow_id="w", step="call", action=definition.steps[0].action, input={"inline": True})


async def test_an_inline_action_runs_with_its_runner_options(
    http_harness: Harness, endpoints: tuple[AgentEndpoints, URL]
) -> None:
    activities = StepActivities(AgentCatalog(), {"http": http_harness.runner}, inline_runners=frozenset({"http"}))
    result: StepResult = await ActivityEnvironment().run(activities.run_step, inline_step(endpoints[1] / "echo"))
    assert result.data == {"inline": True}


async def test_an_inline_action_for_a_kind_not_allowed_is_refused(
    http_harness: Harness, endpoints: tuple[AgentEndpoints, URL]
) -> None:
    activities = StepActivities(AgentCatalog(), {"http": http_harness.runner}, inline_runners=frozenset())
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.run_step, inline_step(endpoints[1] / "echo"))
    assert (failed.value.type, failed.value.non_retryable) == ("InlineActionDisabled", True)
    assert endpoints[0].requests == []


async def test_an_inline_sandbox_action_runs_in_an_empty_directory_of_its_own(sandbox_harness: Harness) -> None:
    definition = parse_definition(
        {
            "name": "inline",
            "steps": [
                {
                    "name": "scratch",
                    "action": {
                        "runner": "sandbox",
                        "command": ["sh", "-c", "pwd; ls -A; echo x > out; cat out"],
                        "options": {"writable_workdir": True},
                    },
                }
            ],
        }
    )
    request = StepRequest(workflow_id="w", step="scratch", action=definition.steps[0].action, input={})
    activities = StepActivities(
        AgentCatalog(), {"sandbox": sandbox_harness.runner}, inline_runners=frozenset({"sandbox"})
    )
    result: StepResult = await ActivityEnvironment().run(activities.run_step, request)
    workdir, written = result.output.split()
    assert written == "x"
    assert Path(workdir).is_absolute() and not Path(workdir).exists()  # removed after the step

"""`{secret: NAME}` in inline actions: checked when saved, resolved only on the worker, never in
what Temporal keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from schemas.agents import AgentCatalog
from schemas.run import StepRequest
from schemas.workflow import Action, DefinitionError, parse_definition
from worker.activities import StepActivities
from worker.runners.shell import ShellRunner
from worker.secrets import Secrets


def definition(action: dict[str, Any]) -> dict[str, Any]:
    return {"name": "Deploy", "steps": [{"name": "push", "action": action}]}


def test_a_definition_may_reference_secrets_in_inline_env_and_options() -> None:
    parsed = parse_definition(
        definition(
            {
                "runner": "http",
                "env": {"TOKEN": {"secret": "deploy_token"}, "MODE": "fast"},
                "options": {"url": "https://example.test", "headers": {"Authorization": {"secret": "api.key"}}},
            }
        )
    )
    action = parsed.all_steps()[0].action
    assert action is not None and action.env["MODE"] == "fast"


@pytest.mark.parametrize(
    ("action", "location"),
    [
        ({"runner": "shell", "command": ["x"], "env": {"TOKEN": {"secret": "a b"}}}, "steps[0].action.env.TOKEN"),
        ({"runner": "shell", "command": ["x"], "env": {"TOKEN": {"secret": "t", "x": 1}}}, "steps[0].action.env.TOKEN"),
        (
            {"runner": "http", "options": {"headers": {"Authorization": {"secret": "../etc/passwd"}}}},
            "steps[0].action.options.headers.Authorization.secret",
        ),
    ],
)
def test_a_malformed_secret_reference_is_refused_with_its_location(action: dict[str, Any], location: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        parse_definition(definition(action))
    assert location in [e.location for e in refused.value.errors]


def request_for(env: dict[str, Any]) -> StepRequest:
    action = Action.model_validate({"runner": "shell", "command": ["sh", "-c", 'printf %s "$TOKEN"'], "env": env})
    return StepRequest(workflow_id="wf", step="push", action=action, input={})


def activities(secrets: Secrets) -> StepActivities:
    runner = ShellRunner(output_cap_bytes=65536, base_env={"PATH": "/usr/bin:/bin"})
    return StepActivities(AgentCatalog(), {"shell": runner}, inline_runners=frozenset({"shell"}), secrets=secrets)


async def test_the_worker_resolves_a_reference_and_the_request_holds_only_the_name(tmp_path: Path) -> None:
    (tmp_path / "deploy_token").write_text("s3cr3t-value\n")
    request = request_for({"TOKEN": {"secret": "deploy_token"}})

    result = await ActivityEnvironment().run(activities(Secrets(tmp_path)).run_step, request)

    assert result.output == "s3cr3t-value"
    stored = request.model_dump_json()  # what goes into the workflow's history
    assert "deploy_token" in stored and "s3cr3t-value" not in stored


async def test_a_secret_comes_from_the_environment_when_no_file_has_it(tmp_path: Path) -> None:
    secrets = Secrets(tmp_path, {"HOOKLINE_SECRET_API_KEY": "from-env"})
    result = await ActivityEnvironment().run(
        activities(secrets).run_step, request_for({"TOKEN": {"secret": "api-key"}})
    )
    assert result.output == "from-env"


async def test_a_missing_secret_fails_the_step_for_good_naming_it_not_its_value(tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(
            activities(Secrets(tmp_path)).run_step, request_for({"TOKEN": {"secret": "missing"}})
        )
    assert (failed.value.type, failed.value.non_retryable) == ("Config", True)
    assert "secret 'missing' is not configured on this worker" in failed.value.message

"""The workflow definition format: the seed's examples load unchanged; errors carry locations."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from schemas.workflow import DefinitionError, parse_definition
from tests.conftest import EXAMPLES

SEED_API_BODY = {
    "name": "Deploy Application",
    "description": "Multi-step deployment workflow",
    "steps": [
        {"name": "run-tests", "type": "agent", "agent_id": "test-agent-uuid"},
        {"name": "build-image", "type": "agent", "agent_id": "builder-agent-uuid"},
        {"name": "deploy", "type": "agent", "agent_id": "deployer-agent-uuid"},
    ],
    "team_id": "team-uuid",
}


def load(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / "workflows" / name).read_text())


def test_incident_response_is_triggered_by_alertmanager_webhooks() -> None:
    definition = parse_definition(load("incident-response.yaml"))
    assert definition.id == "incident-response"
    assert [(t.type, t.source) for t in definition.triggers] == [("webhook", "alertmanager")]
    assert definition.dependencies() == {
        "Analyze Alert": (),
        "Take Action": ("Analyze Alert",),
        "Notify Team": ("Take Action",),
    }


def test_steps_without_requires_follow_the_step_before_them() -> None:
    definition = parse_definition(load("deploy-application.yaml"))
    assert definition.dependencies() == {
        "Run Tests": (),
        "Build Docker Image": ("Run Tests",),
        "Deploy to Production": ("Run Tests", "Build Docker Image"),
    }


def test_a_step_with_requires_waits_only_for_what_it_names() -> None:
    doc = {
        "name": "x",
        "steps": [
            {"name": "a", "agent": "q"},
            {"name": "b", "agent": "q"},
            {"name": "c", "agent": "q", "requires": []},
            {"name": "d", "agent": "q"},
        ],
    }
    assert parse_definition(doc).dependencies() == {"a": (), "b": ("a",), "c": (), "d": ("c",)}


def test_parallel_steps_all_start_at_once() -> None:
    definition = parse_definition(load("multi-cloud-deployment.yaml"))
    assert definition.dependencies() == {"Deploy to AWS": (), "Deploy to GCP": (), "Deploy to Azure": ()}
    assert definition.triggers[0].type == "manual"


def test_api_body_form_loads_with_agent_ids() -> None:
    definition = parse_definition(SEED_API_BODY)
    assert [s.agent_name for s in definition.steps] == ["test-agent-uuid", "builder-agent-uuid", "deployer-agent-uuid"]
    assert definition.team_id == "team-uuid"


def test_name_is_the_only_required_field() -> None:
    assert parse_definition({"name": "Nothing yet"}).all_steps() == ()


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, "name: is required"),
        (
            {"name": "x", "steps": [{"name": "a", "agent": "q", "requires": ["Deploy"]}]},
            'steps[0].requires[0]: unknown step "Deploy"',
        ),
        (
            {"name": "x", "steps": [{"name": "a", "agent": "q"}, {"name": "a", "agent": "q"}]},
            'steps[1].name: duplicate step name "a"',
        ),
        (
            {"name": "x", "steps": [{"name": "a", "agent": "q", "requires": ["b"]}, {"name": "b", "agent": "q"}]},
            'dependency cycle: "a" -> "b" -> "a"',
        ),
        ({"name": "x", "trigger": {"type": "webhook"}}, "trigger.source: is required"),
        ({"name": "x", "steps": [{"name": "a", "agent": "q", "retries": "lots"}]}, "steps[0]"),
        ({"name": "x", "bogus": 1}, "'bogus' was unexpected"),
    ],
    ids=[
        "no-name",
        "unknown-requires",
        "duplicate-step",
        "cycle",
        "webhook-without-source",
        "unknown-step-field",
        "unknown-field",
    ],
)
def test_invalid_definitions_list_every_error_with_its_location(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc)
    assert expected in str(info.value)


def test_all_errors_are_reported_not_just_the_first() -> None:
    doc = {
        "name": "x",
        "steps": [{"name": "a", "agent": "q", "requires": ["nope"]}, {"name": "b", "agent": "q", "requires": ["gone"]}],
    }
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc)
    assert [e.location for e in info.value.errors] == ["steps[0].requires[0]", "steps[1].requires[0]"]

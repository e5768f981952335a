"""The workflow definition format: the seed's examples load unchanged; errors carry locations."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from schemas.workflow import DefinitionError, parse_definition
from tests.conftest import EXAMPLES, seed_body


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
    definition = parse_definition(seed_body())
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


EXTENDED = {
    "name": "Guarded Deploy",
    "inputs": {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}},
    "timeout": "1h30m",
    "steps": [
        {
            "name": "deploy",
            "agent": "deployer",
            "timeout": "5m",
            "retries": {"max_attempts": 4, "initial_interval": "500ms", "backoff_coefficient": 2, "max_interval": 30},
            "with": {"version": "${{ input.version }}"},
            "on_failure": {"agent": "deployer", "with": {"rollback": True}},
        },
        {"name": "smoke", "action": {"runner": "shell", "command": ["true"]}, "retries": 2, "continue_on_error": True},
        {"name": "announce", "agent": "notifier", "when": "steps.smoke.status == 'succeeded'"},
    ],
}


def test_extensions_parse_into_typed_values() -> None:
    definition = parse_definition(EXTENDED)
    deploy, smoke, announce = definition.steps
    assert definition.timeout == 5400.0
    assert deploy.timeout == 300.0
    assert deploy.retries is not None
    assert (deploy.retries.max_attempts, deploy.retries.initial_interval, deploy.retries.max_interval) == (4, 0.5, 30)
    assert deploy.on_failure is not None and deploy.on_failure.with_ == {"rollback": True}
    assert smoke.retries is not None and smoke.retries.max_attempts == 2
    assert smoke.action is not None and smoke.agent_name is None
    assert announce.when == "steps.smoke.status == 'succeeded'"


def test_a_definition_survives_the_trip_through_temporal() -> None:
    # The run request carries the parsed definition; `with` must keep its JSON name.
    definition = parse_definition(EXTENDED)
    dumped = definition.model_dump(mode="json")
    assert dumped["steps"][0]["with"] == {"version": "${{ input.version }}"}
    assert type(definition).model_validate(dumped) == definition


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"name": "a"}, "steps[0]: a step runs exactly one of"),
        ({"name": "a", "agent": "q", "action": {"runner": "shell"}}, "steps[0]: a step runs exactly one of"),
        ({"name": "a", "agent": "q", "timeout": "5 minutes"}, "steps[0].timeout: must be a number of seconds or a"),
        ({"name": "a", "agent": "q", "retries": {"max_attempts": 0}}, "steps[0].retries.max_attempts: 0 is less"),
        ({"name": "a", "agent": "q", "retries": {"tries": 3}}, "'tries' was unexpected"),
        ({"name": "a", "agent": "q", "when": "input.=="}, "steps[0].when: invalid expression 'input.=='"),
        ({"name": "a", "agent": "q", "with": {"x": ["${{ foo[ }}"]}}, "steps[0].with.x[0]: invalid expression 'foo['"),
        ({"name": "a", "agent": "q", "on_failure": {}}, "steps[0].on_failure: on_failure runs exactly one of"),
        ({"name": "a", "agent": "q", "continue_on_error": "yes"}, "steps[0].continue_on_error: 'yes' is not of type"),
        ({"name": "a", "action": {"runner": "shell", "command": "rm -rf /"}}, "steps[0].action.command"),
    ],
    ids=[
        "no-action",
        "two-actions",
        "bad-duration",
        "zero-attempts",
        "unknown-retry-field",
        "bad-when",
        "bad-template",
        "empty-compensation",
        "bad-flag",
        "command-as-string",
    ],
)
def test_invalid_extensions_are_reported_where_they_are(step: dict[str, Any], expected: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "steps": [step]})
    assert expected in str(info.value)


def test_inputs_must_be_a_json_schema() -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "x", "inputs": {"type": "objekt"}})
    assert [e.location for e in info.value.errors] == ["inputs.type"]


def test_unknown_agents_are_errors_when_the_catalog_is_known() -> None:
    doc = {
        "name": "x",
        "steps": [{"name": "a", "agent": "analyzer"}, {"name": "b", "agent": "ghost", "on_failure": {"agent": "nope"}}],
        "parallel": [{"name": "c", "type": "agent", "agent_id": "missing-uuid"}],
    }
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc, agents={"analyzer"})
    assert [str(e) for e in info.value.errors] == [
        'steps[1].agent: unknown agent "ghost"',
        'steps[1].on_failure.agent: unknown agent "nope"',
        'parallel[0].agent_id: unknown agent "missing-uuid"',
    ]
    assert parse_definition(doc).id == "x"  # without a catalog, agents are not checked


def test_structure_and_agent_errors_are_reported_together() -> None:
    doc = {"name": "x", "steps": [{"name": "a", "agent": "ghost", "requires": ["Deploy"]}]}
    with pytest.raises(DefinitionError) as info:
        parse_definition(doc, agents=set())
    assert [str(e) for e in info.value.errors] == [
        'steps[0].requires[0]: unknown step "Deploy"',
        'steps[0].agent: unknown agent "ghost"',
    ]


def test_start_input_gets_defaults_and_is_checked_against_inputs() -> None:
    definition = parse_definition(
        EXTENDED
        | {
            "inputs": {
                **EXTENDED["inputs"],
                "properties": {"version": {"type": "string"}, "environment": {"type": "string", "default": "staging"}},
            }
        }
    )
    assert definition.checked_input({"version": "v1"}) == {"version": "v1", "environment": "staging"}
    with pytest.raises(DefinitionError) as info:
        definition.checked_input({"environment": 3})
    assert [str(e) for e in info.value.errors] == [
        "input.version: is required",
        "input.environment: 3 is not of type 'string'",
    ]
    assert parse_definition({"name": "free"}).checked_input({"anything": 1}) == {"anything": 1}

"""JSON Schema validation: one validator, one error shape, for Hookline's own schemas, a source's
schema and a definition's `inputs` (checked once per start, where the run is built)."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.definitions import StoredDefinition
from hookline.runs import NotStartable, build_request
from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog
from schemas.inputs import InputsValidator
from schemas.validation import SchemaError, Validator, validate
from schemas.workflow import DefinitionError, WorkflowDefinition

INPUTS = {
    "type": "object",
    "required": ["environment"],
    "properties": {
        "environment": {"enum": ["staging", "production"]},
        "replicas": {"type": "integer", "default": 2},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def definition(inputs: dict[str, Any] | None = INPUTS) -> WorkflowDefinition:
    return WorkflowDefinition(id="deploy", name="Deploy", inputs=inputs)


def test_each_missing_property_is_reported_once_at_its_location() -> None:
    schema = {"type": "object", "properties": {"order": {"type": "object", "required": ["id", "total"]}}}
    assert Validator(schema).errors({"order": {}}) == [
        SchemaError("order.id", "is required"),
        SchemaError("order.total", "is required"),
    ]


def test_errors_are_located_below_the_given_place() -> None:
    assert Validator(INPUTS).errors({"environment": "moon"}, at="input") == [
        SchemaError("input.environment", "'moon' is not one of ['staging', 'production']")
    ]


def test_errors_are_in_document_order_and_bounded() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    errors = Validator(schema).errors(["x"] * 50, limit=3)
    assert [e.location for e in errors] == ["[0]", "[1]", "[2]"]


def test_a_valid_document_has_no_errors_with_or_without_the_fast_check() -> None:
    assert Validator(INPUTS).errors({"environment": "staging"}) == []
    assert Validator(INPUTS, kind=InputsValidator, fast=False).errors({"environment": "staging"}) == []


def test_hookline_schemas_use_the_same_shape() -> None:
    assert validate("workflow", {}) == [SchemaError("name", "is required")]


def test_start_input_gets_the_top_level_defaults() -> None:
    assert definition().checked_input({"environment": "staging"}) == {"environment": "staging", "replicas": 2}


def test_given_values_win_over_defaults() -> None:
    assert definition().checked_input({"environment": "staging", "replicas": 5})["replicas"] == 5


def test_a_default_is_the_run_s_own_copy() -> None:
    inputs: dict[str, Any] = {"type": "object", "properties": {"tags": {"type": "array", "default": ["a"]}}}
    checked = definition(inputs).checked_input({})
    checked["tags"].append("b")
    assert inputs["properties"]["tags"]["default"] == ["a"]


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({}, "input.environment"),
        ({"environment": "moon"}, "input.environment"),
        ({"environment": "staging", "replicas": "two"}, "input.replicas"),
        ({"environment": "staging", "tags": ["a", 3]}, "input.tags[1]"),
    ],
)
def test_input_not_matching_the_schema_is_located(value: dict[str, Any], where: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        definition().checked_input(value)
    assert [e.location for e in caught.value.errors] == [where]


def test_a_missing_required_input_reads_like_any_other_missing_field() -> None:
    with pytest.raises(DefinitionError) as caught:
        definition().checked_input({})
    assert caught.value.errors == [SchemaError("input.environment", "is required")]


def test_unresolvable_reference_in_the_inputs_schema_is_a_definition_error_not_a_crash() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/x.json"}}}
    with pytest.raises(DefinitionError) as caught:
        definition(schema).checked_input({"x": 1})
    assert caught.value.errors[0].location == "inputs"


def test_a_manual_start_s_input_is_checked_where_the_run_is_built() -> None:
    stored = StoredDefinition("deploy", 1, "digest", {"name": "Deploy", "inputs": INPUTS}, definition())
    with pytest.raises(NotStartable) as caught:
        build_request(stored, AgentCatalog(), TemporalSettings(), input={"environment": "moon"})
    assert [e.location for e in caught.value.errors] == ["input.environment"]

"""A definition the JSON Schema accepts but the typed model refuses is an invalid definition (422
with the location), never an unexpected error (a 500 of validate and save). Found by the
definitions fuzz test: `retries: 5.987563583233251e+16` is an integer to JSON Schema, not to the
model's shorthand."""

from __future__ import annotations

import pytest

from schemas.workflow import DefinitionError, parse_definition


def test_a_value_the_schema_takes_but_the_model_refuses_is_a_definition_error() -> None:
    doc = {"name": "x", "steps": [{"name": "a", "agent": "deployer", "retries": 5.987563583233251e16}]}
    with pytest.raises(DefinitionError) as raised:
        parse_definition(doc)
    assert [e.location for e in raised.value.errors] == ["steps[0].retries"]

"""API message helpers: cursors, start inputs against an `inputs` schema."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.inputs import start_input
from gateway.api.messages import decode_cursor, encode_cursor
from gateway.errors import BadRequest, Unprocessable

INPUTS = {
    "type": "object",
    "required": ["environment"],
    "properties": {
        "environment": {"enum": ["staging", "production"]},
        "replicas": {"type": "integer", "default": 2},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def test_cursor_round_trips_its_page_token() -> None:
    assert decode_cursor(encode_cursor(b"\x00token\xff", "q1"), "q1") == b"\x00token\xff"


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90LWEtdG9rZW4", encode_cursor(b"token", "another query")])
def test_cursor_not_made_for_this_listing_is_400(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "q1")


def test_absent_input_is_an_empty_object() -> None:
    assert start_input({}, None) == {}


def test_null_input_is_an_empty_object() -> None:
    assert start_input({"input": None}, None) == {}


def test_input_without_a_schema_passes_as_given() -> None:
    assert start_input({"input": {"anything": [1]}}, None) == {"anything": [1]}


def test_top_level_defaults_fill_what_the_input_omits() -> None:
    assert start_input({"input": {"environment": "staging"}}, INPUTS) == {"environment": "staging", "replicas": 2}


def test_given_values_win_over_defaults() -> None:
    assert start_input({"input": {"environment": "staging", "replicas": 5}}, INPUTS)["replicas"] == 5


@pytest.mark.parametrize(
    ("value", "location"),
    [
        ({}, "input.environment"),
        ({"environment": "moon"}, "input.environment"),
        ({"environment": "staging", "replicas": "two"}, "input.replicas"),
        ({"environment": "staging", "tags": ["a", 3]}, "input.tags[1]"),
    ],
)
def test_input_not_matching_the_schema_is_located(value: dict[str, Any], location: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        start_input({"input": value}, INPUTS)
    assert [e.location for e in caught.value.errors] == [location]


@pytest.mark.parametrize("value", [[1], "x", 3, True])
def test_input_that_is_not_an_object_is_unprocessable(value: Any) -> None:
    with pytest.raises(Unprocessable) as caught:
        start_input({"input": value}, None)
    assert caught.value.errors[0].location == "input"


def test_unknown_start_fields_are_named() -> None:
    with pytest.raises(Unprocessable) as caught:
        start_input({"inputs": {}, "input": {}}, None)
    assert [e.location for e in caught.value.errors] == ["inputs"]


def test_unresolvable_reference_in_the_inputs_schema_is_unprocessable_not_a_crash() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/x.json"}}}
    with pytest.raises(Unprocessable) as caught:
        start_input({"input": {"x": 1}}, schema)
    assert caught.value.errors[0].location == "inputs"

"""API message helpers: cursors, the shape of a start body."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.inputs import start_input
from gateway.api.messages import decode_cursor, encode_cursor
from gateway.errors import BadRequest, Unprocessable


def test_cursor_round_trips_its_page_token() -> None:
    assert decode_cursor(encode_cursor(b"\x00token\xff", "q1"), "q1") == b"\x00token\xff"


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90LWEtdG9rZW4", encode_cursor(b"token", "another query")])
def test_cursor_not_made_for_this_listing_is_400(cursor: str) -> None:
    with pytest.raises(BadRequest):
        decode_cursor(cursor, "q1")


def test_absent_input_is_an_empty_object() -> None:
    assert start_input({}) == {}


def test_null_input_is_an_empty_object() -> None:
    assert start_input({"input": None}) == {}


def test_input_passes_as_given() -> None:
    assert start_input({"input": {"anything": [1]}}) == {"anything": [1]}


@pytest.mark.parametrize("value", [[1], "x", 3, True])
def test_input_that_is_not_an_object_is_unprocessable(value: Any) -> None:
    with pytest.raises(Unprocessable) as caught:
        start_input({"input": value})
    assert caught.value.errors[0].location == "input"


def test_unknown_start_fields_are_named() -> None:
    with pytest.raises(Unprocessable) as caught:
        start_input({"inputs": {}, "input": {}})
    assert [e.location for e in caught.value.errors] == ["inputs"]

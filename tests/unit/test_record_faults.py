"""A record, however it was made, decodes into an event or fails with `EventDecodeError` (its
DLQ reason); a fault of one definition while matching or explaining is confined to it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from hookline.definitions import StoredDefinition
from hookline.matching import TriggerIndex, explain
from schemas.events import Event, EventDecodeError
from schemas.limits import MAX_JSON_DEPTH
from schemas.workflow import parse_definition
from triggers.external import MAX_ATTRIBUTE_BYTES, event_from_record

HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e-1"),
    ("ce_source", b"/x"),
    ("ce_type", b"t"),
    ("ce_dedupekey", b"d-1"),
]


def nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def record(topic: str, value: bytes | None, headers: list[tuple[str, bytes | None]]) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, 0, 7, 0, 0, b"k", value, None, 0, 0, headers)


@pytest.mark.parametrize("name", ["ce_id", "ce_subject", "ce_myext", "content-type", "traceparent"])
def test_a_header_whose_value_is_null_is_a_decode_error_or_ignored(name: str) -> None:
    headers = [*HEADERS, (name, None)] if name != "ce_id" else [h for h in HEADERS if h[0] != name] + [(name, None)]
    try:
        event = Event.from_kafka(b"{}", headers)  # type: ignore[arg-type]
    except EventDecodeError as exc:
        assert name in str(exc)
    else:
        assert event.id == "e-1"


def test_a_null_required_header_is_a_decode_error_naming_it() -> None:
    headers = [h for h in HEADERS if h[0] != "ce_id"] + [("ce_id", None)]
    with pytest.raises(EventDecodeError, match="ce_id"):
        Event.from_kafka(b"{}", headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 300, 1100])
def test_data_nested_deeper_than_the_limit_is_a_decode_error_naming_it(levels: int) -> None:
    with pytest.raises(EventDecodeError, match=f"{MAX_JSON_DEPTH} levels"):
        Event.from_kafka(nested(levels), HEADERS)


def test_data_at_the_limit_decodes() -> None:
    assert Event.from_kafka(nested(MAX_JSON_DEPTH), HEADERS).data["a"]


@pytest.mark.parametrize(
    "value",
    [
        nested(300),  # a plain record
        orjson.dumps({"specversion": "1.0", "id": "x", "source": "/s", "type": "t"})[:-1]
        + b',"data":'
        + nested(300)
        + b"}",  # structured mode
    ],
)
def test_external_records_nested_too_deep_are_decode_errors(value: bytes) -> None:
    with pytest.raises(EventDecodeError, match=f"{MAX_JSON_DEPTH} levels"):
        event_from_record(record("orders", value, []))


def test_an_external_record_with_a_null_ce_header_is_a_decode_error() -> None:
    headers: list[tuple[str, bytes | None]] = [*HEADERS[:-1], ("ce_dedupekey", None)]
    with pytest.raises(EventDecodeError, match="ce_dedupekey"):
        event_from_record(record("orders", b"{}", headers))


def stored(name: str) -> StoredDefinition:
    doc = {"name": name, "trigger": {"type": "webhook", "source": "alertmanager"}}
    definition = parse_definition(doc)
    return StoredDefinition(id=definition.id, version=1, digest="", document=doc, definition=definition)


class Exploding:
    """A compiled filter that fails with an exception no one planned for."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def index_key(self) -> None:
        return None

    def passes(self, context: dict[str, Any]) -> bool:
        raise self.error

    def explain(self, context: dict[str, Any]) -> str | None:
        raise self.error


def alert() -> Event:
    return Event(id="e", source="/hooks/alertmanager", type="t", dedupekey="k", hooklinesource="alertmanager")


@pytest.mark.parametrize("error", [TypeError("boom"), RecursionError("deep"), KeyError("k"), ValueError("v")])
def test_a_definition_whose_filter_fails_is_reported_and_the_others_still_match(error: Exception) -> None:
    good, bad = stored("good"), stored("bad")
    object.__setattr__(bad.definition.triggers[0], "compiled_filter", Exploding(error))
    matches = TriggerIndex([good, bad]).matches(alert())
    assert [(m.stored.id, m.error is None) for m in matches] == [("bad", False), ("good", True)]
    failed = next(m for m in matches if m.error is not None)
    assert type(error).__name__ in (failed.error or "")


def test_explain_confines_a_failing_definition_to_its_own_row() -> None:
    good, bad = stored("good"), stored("bad")
    object.__setattr__(bad.definition.triggers[0], "compiled_filter", Exploding(TypeError("boom")))
    rows = {e.definition_id: e for e in explain([good, bad], alert())}
    assert rows["good"].matches
    assert not rows["bad"].matches and "TypeError" in (rows["bad"].reason or "")


@pytest.mark.parametrize(
    ("value", "headers", "key"),
    [
        (b"{}", [*HEADERS, ("ce_myext", b"x" * MAX_ATTRIBUTE_BYTES)], b"k"),  # binary mode
        (
            orjson.dumps({"specversion": "1.0", "id": "e", "source": "/s", "type": "t", "subject": "x" * 70_000}),
            [],
            b"k",
        ),
        (b'{"plain": 1}', [], b"k" * (MAX_ATTRIBUTE_BYTES + 1)),  # the key becomes its partition key
    ],
    ids=["binary", "structured", "plain"],
)
def test_an_event_whose_attributes_outgrow_a_decision_is_a_decode_error(
    value: bytes, headers: list[tuple[str, bytes | None]], key: bytes
) -> None:
    made = ConsumerRecord("orders", 0, 7, 0, 0, key, value, None, 0, 0, headers)
    with pytest.raises(EventDecodeError, match=f"attributes take .* bytes; at most {MAX_ATTRIBUTE_BYTES}"):
        event_from_record(made)


def test_attributes_just_under_the_limit_decode() -> None:
    event = event_from_record(record("orders", b"{}", [*HEADERS, ("ce_myext", b"x" * (MAX_ATTRIBUTE_BYTES - 200))]))
    assert len(event.extensions["myext"]) == MAX_ATTRIBUTE_BYTES - 200

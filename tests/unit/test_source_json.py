"""Generic JSON sources: type and dedupe key from configured fields or headers, a hash of the
body otherwise, an optional JSON Schema, and the headers that matter kept on the event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from gateway.errors import BadRequest, InvalidPayload, UnsupportedMediaType
from gateway.sources import JsonSource
from gateway.sources.config import JsonConfig
from schemas.events import HEADERS_EXTENSION, Event

ORDER = {"order": {"id": "o-17", "kind": "created", "shop": "eu"}, "total": 12.5}


def source(**config: Any) -> JsonSource:
    return JsonSource("orders", JsonConfig.model_validate(config))


def parse(src: JsonSource, doc: Any = ORDER, **hdrs: str) -> Event:
    headers = CIMultiDict({"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in hdrs.items()}})
    events = src.parse(orjson.dumps(doc), headers)
    assert len(events) == 1
    return events[0]


def test_the_body_is_the_event_data_under_the_configured_source_name() -> None:
    event = parse(source())
    assert event.data == ORDER
    assert (event.hooklinesource, event.source, event.type) == ("orders", "/hooks/orders", "dev.hookline.json")


def test_type_and_dedupe_key_from_dotted_body_fields() -> None:
    event = parse(source(type="com.example.order", type_field="order.kind", dedupe_field="order.id"))
    assert (event.type, event.dedupekey, event.partitionkey) == ("com.example.order.created", "o-17", "o-17")


def test_headers_win_over_fields() -> None:
    src = source(type_field="order.kind", type_header="X-Event", dedupe_field="order.id", dedupe_header="X-Request-Id")
    event = parse(src, X_Event="paid", X_Request_Id="req-9")
    assert (event.type, event.dedupekey) == ("dev.hookline.json.paid", "req-9")


def test_without_a_dedupe_key_configured_it_is_a_hash_of_the_body_in_any_key_order() -> None:
    src = source()
    first = parse(src)
    reordered = parse(src, dict(reversed(list(ORDER.items()))))
    other = parse(src, {**ORDER, "total": 13})
    assert first.dedupekey == reordered.dedupekey != other.dedupekey
    assert len(first.dedupekey) == 32


def test_a_configured_dedupe_key_the_sender_left_out_is_bad_input() -> None:
    with pytest.raises(BadRequest, match=r"dedupe key is missing.*header X-Request-Id or field order.ref"):
        parse(source(dedupe_field="order.ref", dedupe_header="X-Request-Id"))


def test_a_missing_type_field_falls_back_to_the_base_type() -> None:
    assert parse(source(type_field="order.nope")).type == "dev.hookline.json"


@pytest.mark.parametrize("value", [{"a": 1}, [1], True, "x" * 300, "tab\there"])
def test_a_dedupe_key_must_be_a_short_printable_string_or_number(value: Any) -> None:
    with pytest.raises(BadRequest, match="dedupe key in field key"):
        parse(source(dedupe_field="key"), {"key": value})


def test_numbers_are_keys_too() -> None:
    assert parse(source(dedupe_field="n"), {"n": 42}).dedupekey == "42"


def test_subject_and_partition_key_from_fields() -> None:
    event = parse(source(subject_field="order.shop", partition_field="order.kind", dedupe_field="order.id"))
    assert (event.subject, event.partitionkey) == ("eu", "created")


def test_kept_headers_travel_in_an_extension() -> None:
    event = parse(source(keep_headers=["X-Request-Id", "User-Agent"]), X_Request_Id="req-9", Authorization="x")
    assert json.loads(event.extensions[HEADERS_EXTENSION]) == {"x-request-id": "req-9"}
    _, _, kafka_headers = event.to_kafka()
    assert (f"ce_{HEADERS_EXTENSION}", event.extensions[HEADERS_EXTENSION].encode()) in kafka_headers


def test_a_kept_header_that_is_not_printable_text_is_dropped() -> None:
    raw_ff = b"\xff".decode("utf-8", "surrogateescape")  # a raw 0xFF header byte, as aiohttp decodes it
    src = source(keep_headers=["X-Request-Id", "X-Trace"])
    event = parse(src, X_Request_Id=f"req{raw_ff}", X_Trace="t-1")
    assert json.loads(event.extensions[HEADERS_EXTENSION]) == {"x-trace": "t-1"}
    assert parse(src, X_Request_Id=f"req{raw_ff}").extensions == {}


def test_no_kept_headers_no_extension() -> None:
    assert parse(source()).extensions == {}


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    schema = {
        "type": "object",
        "required": ["order"],
        "properties": {"order": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
    }
    path = tmp_path / "order.schema.json"
    path.write_text(json.dumps(schema))
    return path


def test_a_body_matching_the_schema_is_accepted(schema_file: Path) -> None:
    assert parse(source(schema_file=schema_file)).data == ORDER


@pytest.mark.parametrize(
    ("doc", "where"),
    [({"total": 1}, "order"), ({"order": {}}, "order.id"), ({"order": {"id": 5}}, "order.id")],
    ids=["missing-object", "missing-field", "wrong-type"],
)
def test_schema_violations_name_the_field(schema_file: Path, doc: Any, where: str) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse(source(schema_file=schema_file), doc)
    assert where in [e.location for e in info.value.errors]
    assert where in info.value.detail


@pytest.mark.parametrize("doc", [[1, 2], "text", 3])
def test_the_body_must_be_an_object(doc: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        parse(source(), doc)


def test_malformed_json_and_other_media_types() -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        source().parse(b"{", CIMultiDict({"Content-Type": "application/json"}))
    with pytest.raises(UnsupportedMediaType):
        source().parse(b"{}", CIMultiDict({"Content-Type": "text/plain"}))

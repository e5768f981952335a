"""The CloudEvents binary-mode envelope on Kafka records."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.events import _ATTRIBUTES, HEADER_PREFIX, Event, EventDecodeError, new_event_id


def make() -> Event:
    return Event(
        id="e-1",
        source="/hooks/alertmanager",
        type="t.firing",
        subject="HighErrorRate",
        dedupekey="d-1",
        partitionkey="fp-1",
        hooklinesource="alertmanager",
        data={"a": [1, "x"]},
    )


def test_binary_mode_round_trip_keeps_every_attribute() -> None:
    event = make()
    key, value, headers = event.to_kafka()
    assert key == b"fp-1"
    assert Event.from_kafka(value, headers) == event


def test_the_resolves_extension_round_trips() -> None:
    event = make().model_copy(update={"resolves": "d-0"})
    _, value, headers = event.to_kafka()
    assert dict(headers)["ce_resolves"] == b"d-0"
    assert Event.from_kafka(value, headers).resolves == "d-0"


def test_attributes_travel_as_ce_headers() -> None:
    _, _, headers = make().to_kafka()
    names = dict(headers)
    assert names["ce_id"] == b"e-1" and names["ce_type"] == b"t.firing" and names["ce_dedupekey"] == b"d-1"
    assert names["content-type"] == b"application/json"


def reference_headers(event: Event) -> list[tuple[str, bytes]]:
    """What the record's headers are, written the plain way: one per attribute that is set."""
    headers = [("content-type", event.datacontenttype.encode())]
    for name in _ATTRIBUTES:  # the order the record's headers follow `content-type` in
        value = getattr(event, name)
        if value is None or value == "":
            continue
        text = value.isoformat() if name == "time" else str(value)
        headers.append((HEADER_PREFIX + name, text.encode()))
    return headers + [(HEADER_PREFIX + name, text.encode()) for name, text in event.extensions.items()]


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"subject": None, "partitionkey": "", "hooklinesource": ""},
        {"resolves": "d-0", "subject": "ünïcode ✓", "extensions": {"dataschema": "s", "traceparent": "00-ab"}},
        {"specversion": "", "source": "", "type": "", "id": ""},
        {"datacontenttype": "application/cloudevents+json", "subject": ""},
    ],
)
def test_headers_are_the_set_attributes_in_order_then_the_extensions(update: dict[str, object]) -> None:
    event = make().model_copy(update=update)
    assert event.to_kafka()[2] == reference_headers(event)


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "HighErrorRate", "partitionkey": "fp-1", "hooklinesource": "am", "resolves": "d-0"},
        {},
        {"subject": None, "resolves": None},
    ],
)
def test_a_checked_event_is_the_event_validation_would_build(fields: dict[str, object]) -> None:
    given = {"id": "e-1", "source": "/hooks/am", "type": "t.firing", "dedupekey": "d-1", "data": {"a": [1]}, **fields}
    checked = Event.checked(**given)  # type: ignore[arg-type]
    assert Event.__new__ is object.__new__  # what `checked` makes its instances with
    # Every argument counts as set, given or defaulted (nothing dumps events with exclude_unset).
    defaults = {"subject": None, "partitionkey": "", "hooklinesource": "", "resolves": None}
    validated = Event(**{**defaults, **given}, time=checked.time)  # type: ignore[arg-type]
    assert checked == validated
    assert checked.model_fields_set == validated.model_fields_set - {"time"}
    assert checked.model_dump() == validated.model_dump()
    assert checked.to_kafka() == validated.to_kafka()
    assert Event.from_kafka(*checked.to_kafka()[1:]) == checked
    with pytest.raises(ValidationError):  # frozen like any other
        checked.id = "e-2"  # type: ignore[misc]


def test_utc_times_are_written_as_isoformat_writes_them() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        time = datetime(
            rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.choice((0, rng.randint(0, 999_999))), tzinfo=UTC,
        )  # fmt: skip
        headers = dict(make().model_copy(update={"time": time}).to_kafka()[2])
        assert headers["ce_time"] == time.isoformat().encode()
    other = datetime(2026, 11, 30, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert dict(make().model_copy(update={"time": other}).to_kafka()[2])["ce_time"] == b"2026-11-30T12:00:00+05:30"


def test_event_ids_are_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert (str(parsed), parsed.version, parsed.variant) == (event_id, 4, uuid.RFC_4122)


def test_record_key_falls_back_to_dedupe_key_without_partition_key() -> None:
    key, _, _ = make().model_copy(update={"partitionkey": ""}).to_kafka()
    assert key == b"d-1"


@pytest.mark.parametrize(
    ("value", "drop", "message"),
    [
        (b"{}", "ce_id", "missing CloudEvents headers: ce_id"),
        (b"not json", None, "not JSON"),
        (b"[1]", None, "JSON object"),
    ],
)
def test_undecodable_records_say_why(value: bytes, drop: str | None, message: str) -> None:
    _, _, headers = make().to_kafka()
    headers = [h for h in headers if h[0] != drop]
    with pytest.raises(EventDecodeError, match=message):
        Event.from_kafka(value, headers)


def test_other_spec_versions_are_refused() -> None:
    _, value, headers = make().to_kafka()
    headers = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in headers]
    with pytest.raises(EventDecodeError, match="specversion"):
        Event.from_kafka(value, headers)


@pytest.mark.parametrize("name", ["ce_data", "ce_extensions"])
def test_a_header_named_like_a_model_field_is_not_an_attribute(name: str) -> None:
    # A record from another producer may carry any header; it must not reach the model as a field.
    event = make()
    _, value, headers = event.to_kafka()
    decoded = Event.from_kafka(value, [*headers, (name, b'{"forged": true}')])
    assert decoded.data == event.data


@pytest.mark.parametrize("name", ["ce_id", "ce_subject", "ce_traceparent"])
def test_an_attribute_header_that_is_not_utf8_is_a_decode_error_naming_it(name: str) -> None:
    _, value, headers = make().to_kafka()
    headers = [*(h for h in headers if h[0] != name), (name, b"\xff\xfe")]
    with pytest.raises(EventDecodeError, match=f"header {name} is not UTF-8"):
        Event.from_kafka(value, headers)


def test_a_content_type_that_is_not_utf8_is_read_with_replacements() -> None:
    _, value, headers = make().to_kafka()
    headers = [(k, b"application/json\xff" if k == "content-type" else v) for k, v in headers]
    assert Event.from_kafka(value, headers).datacontenttype == "application/json\ufffd"

"""The CloudEvents binary-mode envelope on Kafka records."""

from __future__ import annotations

import pytest

from schemas.events import Event, EventDecodeError


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

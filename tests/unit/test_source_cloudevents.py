"""CloudEvents over HTTP are passed through with their own id, source, type and extensions, in
binary, structured and batched mode; the dedupe key is `dedupekey`, else the id."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.sources import CloudEventsSource
from schemas.events import HEADERS_EXTENSION, Event

SOURCE = CloudEventsSource("events")
STRUCTURED = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "https://github.com/cloudevents/spec/pull",
    "type": "com.github.pull_request.opened",
    "subject": "123",
    "time": "2018-04-05T17:31:00Z",
    "comexampleextension1": "value",
    "comexampleothervalue": 5,
    "datacontenttype": "application/json",
    "data": {"number": 123},
}


def structured(doc: Any, media: str = "application/cloudevents+json") -> list[Event]:
    return SOURCE.parse(json.dumps(doc).encode(), CIMultiDict({"Content-Type": media}))


def binary(data: bytes = b'{"number": 123}', content_type: str = "application/json", **attributes: str) -> list[Event]:
    headers = CIMultiDict({"Content-Type": content_type})
    defaults = {"specversion": "1.0", "id": "b-1", "source": "/ci", "type": "com.example.build.done"}
    for name, value in {**defaults, **attributes}.items():
        headers[f"ce-{name}"] = value
    return SOURCE.parse(data, headers)


def test_structured_mode_keeps_the_events_own_attributes() -> None:
    [event] = structured(STRUCTURED)
    assert (event.id, event.source, event.type, event.subject) == (
        "A234-1234-1234",
        "https://github.com/cloudevents/spec/pull",
        "com.github.pull_request.opened",
        "123",
    )
    assert event.time.isoformat() == "2018-04-05T17:31:00+00:00"
    assert event.data == {"number": 123}
    assert event.extensions == {"comexampleextension1": "value", "comexampleothervalue": "5"}
    assert (event.dedupekey, event.hooklinesource) == ("A234-1234-1234", "events")


def test_binary_mode_reads_ce_headers_and_the_body_as_data() -> None:
    [event] = binary(dedupekey="build-77", traceparent="00-abc-def-01")
    assert (event.id, event.type, event.dedupekey) == ("b-1", "com.example.build.done", "build-77")
    assert event.extensions == {"traceparent": "00-abc-def-01"}
    assert event.data == {"number": 123}


def test_percent_encoded_header_values_are_decoded() -> None:
    assert binary(subject="caf%C3%A9 %25")[0].subject == "café %"


def test_a_batch_is_one_event_each() -> None:
    second = {**STRUCTURED, "id": "A234-2"}
    events = structured([STRUCTURED, second], "application/cloudevents-batch+json")
    assert [e.id for e in events] == ["A234-1234-1234", "A234-2"]


def test_extensions_survive_the_trip_through_kafka() -> None:
    [event] = structured(STRUCTURED)
    _, value, headers = event.to_kafka()
    assert Event.from_kafka(value, headers) == event


def test_a_sender_cannot_claim_another_source_name() -> None:
    assert structured({**STRUCTURED, "hooklinesource": "alertmanager"})[0].hooklinesource == "events"


def test_a_sender_cannot_forge_the_headers_the_gateway_kept() -> None:
    forged = '{"x-github-event": "push"}'
    assert HEADERS_EXTENSION not in structured({**STRUCTURED, HEADERS_EXTENSION: forged})[0].extensions
    assert HEADERS_EXTENSION not in binary(**{HEADERS_EXTENSION: forged})[0].extensions


def test_an_event_without_data_has_empty_data() -> None:
    doc = {k: v for k, v in STRUCTURED.items() if k != "data"}
    assert structured(doc)[0].data == {}
    assert binary(b"")[0].data == {}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({k: v for k, v in STRUCTURED.items() if k != "id"}, "missing attribute.*id"),
        ({**STRUCTURED, "specversion": "0.3"}, "specversion must be 1.0"),
        ({**STRUCTURED, "id": ""}, "id must be a non-empty"),
        ({**STRUCTURED, "time": "yesterday"}, "time"),
        ({**STRUCTURED, "data": [1, 2]}, "JSON object"),
        ({**STRUCTURED, "Bad_Name": "x"}, "Bad_Name"),
        ({**STRUCTURED, "ext": {"nested": 1}}, "ext"),
    ],
    ids=["no-id", "specversion", "empty-id", "time", "data-array", "bad-extension-name", "nested-extension"],
)
def test_invalid_structured_events_say_what_is_wrong(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        structured(doc)


def test_binary_mode_without_ce_headers_explains_both_modes() -> None:
    with pytest.raises(BadRequest, match=r"ce-id, ce-source, ce-type, ce-specversion.*application/cloudevents\+json"):
        SOURCE.parse(b"{}", CIMultiDict({"Content-Type": "application/json"}))


@pytest.mark.parametrize(
    "parse",
    [
        lambda: binary(b"<xml/>", content_type="application/xml"),
        lambda: structured({**STRUCTURED, "datacontenttype": "text/plain", "data": "hi"}),
        lambda: structured({**{k: v for k, v in STRUCTURED.items() if k != "data"}, "data_base64": "aGk="}),
    ],
    ids=["binary-xml", "structured-text", "data-base64"],
)
def test_non_json_data_is_unsupported(parse: Any) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse()


def test_an_empty_batch_is_bad_input() -> None:
    with pytest.raises(BadRequest, match="non-empty JSON array"):
        structured([], "application/cloudevents-batch+json")


RAW_FF = b"\xff".decode("utf-8", "surrogateescape")  # a raw 0xFF header byte, as aiohttp decodes it


@pytest.mark.parametrize("header", ["subject", "partitionkey", "resolves", "traceparent", "dataschema"])
def test_a_binary_attribute_that_is_not_printable_text_is_refused_by_name(header: str) -> None:
    with pytest.raises(BadRequest, match=f"ce-{header} must be printable"):
        binary(**{header: f"a{RAW_FF}b"})


@pytest.mark.parametrize("header", ["subject", "traceparent"])
def test_a_binary_attribute_over_256_characters_is_refused(header: str) -> None:
    with pytest.raises(BadRequest, match=f"ce-{header}.*at most 256"):
        binary(**{header: "x" * 257})


def test_a_content_type_that_is_not_printable_text_is_refused() -> None:
    with pytest.raises(BadRequest, match="Content-Type must be printable"):
        binary(content_type=f"application/json; charset={RAW_FF}")


@pytest.mark.parametrize("name", ["subject", "comexampleextension1"])
def test_a_structured_attribute_that_is_not_printable_is_refused(name: str) -> None:
    with pytest.raises(BadRequest, match=f"event.{name} must be printable"):
        structured({**STRUCTURED, name: "line\nbreak"})


def test_every_accepted_binary_event_can_be_written_to_kafka() -> None:
    [event] = binary(subject="café", partitionkey="p-1", resolves="k-0", traceparent="00-abc-def-01")
    event.to_kafka()

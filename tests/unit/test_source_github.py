"""GitHub deliveries: the event name as type suffix, the delivery id as dedupe key, JSON or
form-encoded payloads, the headers that matter kept; signatures are checked by the guard."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from multidict import CIMultiDict

from gateway.errors import BadRequest, InvalidSignature, UnsupportedMediaType
from gateway.sources import GithubSource
from gateway.sources.config import GithubConfig
from schemas.events import HEADERS_EXTENSION

SECRET = "github-webhook-secret-1"
PUSH = {"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}, "after": "abc123"}
SOURCE = GithubSource("github", GithubConfig.model_validate({"secrets": [{"value": SECRET}]}))


def delivery(body: bytes, content_type: str = "application/json", event: str = "push") -> CIMultiDict[str]:
    return CIMultiDict(
        {
            "Content-Type": content_type,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-GitHub-Hook-ID": "292430182",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        }
    )


def test_a_push_becomes_a_typed_event_keyed_by_its_delivery() -> None:
    body = json.dumps(PUSH).encode()
    [event] = SOURCE.parse(body, delivery(body))
    assert event.type == "com.github.push"
    assert event.dedupekey == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert event.subject == "acme/shop"
    assert event.data == PUSH
    kept = json.loads(event.extensions[HEADERS_EXTENSION])
    assert kept["x-github-event"] == "push" and kept["x-github-hook-id"] == "292430182"
    assert "x-hub-signature-256" not in kept


def test_form_encoded_deliveries_carry_the_payload_field() -> None:
    body = urlencode({"payload": json.dumps(PUSH)}).encode()
    headers = delivery(body, "application/x-www-form-urlencoded")
    SOURCE.guard.check_headers(headers)
    SOURCE.guard.check_body(headers, body)
    assert SOURCE.parse(body, headers)[0].data == PUSH


def test_a_ping_without_a_repository_has_no_subject() -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    [event] = SOURCE.parse(body, delivery(body, event="ping"))
    assert (event.type, event.subject) == ("com.github.ping", None)


def test_the_signature_covers_the_raw_bytes_not_the_decoded_json() -> None:
    body = json.dumps(PUSH).encode()
    headers = delivery(body)
    reformatted = json.dumps(PUSH, indent=2).encode()
    with pytest.raises(InvalidSignature):
        SOURCE.guard.check_body(headers, reformatted)


def test_a_delivery_without_its_id_is_bad_input() -> None:
    body = json.dumps(PUSH).encode()
    headers = delivery(body)
    del headers["X-GitHub-Delivery"]
    with pytest.raises(BadRequest, match="x-github-delivery"):
        SOURCE.parse(body, headers)


@pytest.mark.parametrize("body", [b"payload=%7B", b"other=1", b"payload=1&payload=2"])
def test_broken_form_bodies_are_bad_input(body: bytes) -> None:
    with pytest.raises(BadRequest):
        SOURCE.parse(body, delivery(body, "application/x-www-form-urlencoded"))


def test_other_content_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="x-www-form-urlencoded"):
        SOURCE.parse(b"<xml/>", delivery(b"<xml/>", "application/xml"))

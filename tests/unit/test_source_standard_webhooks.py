"""Standard Webhooks: `webhook-id` as dedupe key, the payload's `type` as type suffix, whsec_
secrets; the signature and timestamp are checked by the source's guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.errors import InvalidSignature, StaleTimestamp
from gateway.sources import StandardWebhooksSource
from gateway.sources.config import StandardWebhooksConfig

KEY = b"0123456789abcdef01234567"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_800_000_000
PAYLOAD = {"type": "invoice.paid", "timestamp": "2027-01-15T08:00:00Z", "data": {"invoice": "in_1", "amount": 990}}


def source(**config: Any) -> StandardWebhooksSource:
    options = StandardWebhooksConfig.model_validate({"secrets": [{"value": SECRET}], **config})
    return StandardWebhooksSource("billing", options, clock=lambda: NOW)


def signed(body: bytes, msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", stamp: int = NOW) -> CIMultiDict[str]:
    digest = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return CIMultiDict(
        {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
    )


def accept(src: StandardWebhooksSource, body: bytes, headers: CIMultiDict[str]) -> Any:
    src.guard.check_headers(headers)
    src.guard.check_body(headers, body)
    return src.parse(body, headers)


def test_a_signed_message_becomes_an_event_keyed_by_its_webhook_id() -> None:
    body = json.dumps(PAYLOAD).encode()
    [event] = accept(source(), body, signed(body))
    assert event.type == "dev.hookline.webhook.invoice.paid"
    assert event.dedupekey == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert event.data == PAYLOAD
    assert json.loads(event.extensions["hooklineheaders"]) == {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(NOW),
    }


def test_the_type_prefix_is_configurable() -> None:
    body = json.dumps(PAYLOAD).encode()
    assert accept(source(type="com.example.billing"), body, signed(body))[0].type == "com.example.billing.invoice.paid"


def test_a_secret_without_the_whsec_prefix_is_the_same_key() -> None:
    body = json.dumps(PAYLOAD).encode()
    plain = StandardWebhooksSource(
        "billing",
        StandardWebhooksConfig.model_validate({"secrets": [{"value": SECRET.removeprefix("whsec_")}]}),
        clock=lambda: NOW,
    )
    assert accept(plain, body, signed(body))


def test_a_resend_with_the_same_id_has_the_same_dedupe_key() -> None:
    body = json.dumps(PAYLOAD).encode()
    first = accept(source(), body, signed(body))[0]
    again = accept(source(), body, signed(body, stamp=NOW + 60))[0]
    assert first.dedupekey == again.dedupekey and first.id != again.id


def test_a_replayed_message_outside_the_tolerance_is_refused() -> None:
    body = json.dumps(PAYLOAD).encode()
    with pytest.raises(StaleTimestamp):
        accept(source(), body, signed(body, stamp=NOW - 600))


def test_a_tampered_body_is_refused() -> None:
    body = json.dumps(PAYLOAD).encode()
    with pytest.raises(InvalidSignature):
        accept(source(), body.replace(b"990", b"9"), signed(body))

"""Every source kind through the gateway onto a real Kafka: what each request becomes on the
events topic, and the credentials each source accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from hookline.settings import KafkaSettings
from schemas.events import Event
from tests.conftest import events_of, read_topic
from tests.integration.conftest import wait_ready

TOKEN_OLD, TOKEN_NEW = "am-token-old-0123456789", "am-token-new-0123456789"
GITHUB_OLD, GITHUB_NEW = "github-secret-old-01234", "github-secret-new-01234"
WHSEC_KEY = b"standard-webhooks-key-24"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "kind"],
    "properties": {"id": {"type": "string"}, "kind": {"enum": ["created", "paid"]}},
}


def sources_config(tmp_path: Path) -> dict[str, Any]:
    """One source of each kind (and a secured and a rate-limited one)."""
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    return {
        "alertmanager": "alertmanager",
        "am-secured": {
            "kind": "alertmanager",
            "auth": {
                "bearer": [{"value": TOKEN_OLD}, {"value": TOKEN_NEW}],
                "basic": [{"username": "alertmanager", "password": {"value": TOKEN_OLD}}],
            },
        },
        "orders": {
            "kind": "json",
            "type": "com.example.order",
            "type_field": "kind",
            "dedupe_field": "id",
            "schema_file": str(schema),
            "keep_headers": ["X-Request-Id"],
        },
        "anything": "json",
        "events": "cloudevents",
        "github": {"kind": "github", "secrets": [{"value": GITHUB_OLD}, {"value": GITHUB_NEW}]},
        "billing": {"kind": "standard-webhooks", "secrets": [{"value": WHSEC}]},
        "limited": {"kind": "json", "rate_limit": {"per_second": 0.2, "burst": 2}},
        "github-limited": {
            "kind": "github",
            "secrets": [{"value": GITHUB_OLD}],
            "rate_limit": {"per_second": 0.2, "burst": 2},
        },
    }


async def start_gateway(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, tmp_path: Path, **options: Any
) -> TestClient[Any, Any]:
    gateway = GatewayOptions.model_validate(
        {"max_body_bytes": 64 * 1024, "sources": sources_config(tmp_path), **options}
    )
    client = await aiohttp_client(create_app(GatewaySettings(kafka=kafka_settings, gateway=gateway)))
    await wait_ready(client)
    return client


@pytest.fixture
async def ingress(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, tmp_path: Path) -> TestClient[Any, Any]:
    return await start_gateway(aiohttp_client, kafka_settings, tmp_path)


def github_headers(body: bytes, secret: str = GITHUB_OLD, event: str = "push") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def standard_headers(body: bytes, msg_id: str = "msg_1", stamp: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if stamp is None else stamp))
    digest = hmac.new(WHSEC_KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


async def produced(kafka: KafkaSettings, expect: int) -> list[Event]:
    return events_of(await read_topic(kafka, kafka.events_topic, expect=expect))


async def test_a_json_webhook_becomes_one_event_with_its_body_as_data(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = {"id": "o-1", "kind": "paid", "total": 12.5}
    response = await ingress.post("/hooks/orders", json=body, headers={"X-Request-Id": "req-1"})
    assert response.status == 202
    [event] = await produced(kafka_settings, 1)
    assert event.id == (await response.json())["event_ids"][0]
    assert (event.type, event.dedupekey, event.hooklinesource) == ("com.example.order.paid", "o-1", "orders")
    assert event.data == body
    assert json.loads(event.extensions["hooklineheaders"]) == {"x-request-id": "req-1"}


async def test_a_json_webhook_without_a_configured_key_is_deduplicated_by_its_body(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    for body in ('{"a": 1, "b": 2}', '{"b": 2, "a": 1}', '{"a": 1, "b": 3}'):
        response = await ingress.post("/hooks/anything", data=body, headers={"Content-Type": "application/json"})
        assert response.status == 202
    keys = [e.dedupekey for e in await produced(kafka_settings, 3)]
    assert len(keys) == 3 and len(set(keys)) == 2


async def test_a_binary_cloudevent_is_passed_through(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "build-42",
        "ce-source": "https://ci.example/pipelines/7",
        "ce-type": "com.example.ci.build.finished",
        "ce-time": "2026-11-24T10:00:00Z",
        "ce-traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    response = await ingress.post("/hooks/events", data=b'{"status": "green"}', headers=headers)
    assert response.status == 202
    [record] = await read_topic(kafka_settings, kafka_settings.events_topic, expect=1)
    event = Event.from_kafka(record.value, record.headers)
    assert (event.id, event.source, event.type) == ("build-42", headers["ce-source"], headers["ce-type"])
    assert (event.dedupekey, event.hooklinesource, event.data) == ("build-42", "events", {"status": "green"})
    assert dict(record.headers)["ce_traceparent"] == headers["ce-traceparent"].encode()


async def test_a_structured_cloudevent_batch_is_one_event_each(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    batch = [
        {"specversion": "1.0", "id": f"e-{i}", "source": "/orders", "type": "com.example.order", "dedupekey": f"k-{i}"}
        for i in range(3)
    ]
    response = await ingress.post(
        "/hooks/events", data=json.dumps(batch), headers={"Content-Type": "application/cloudevents-batch+json"}
    )
    assert response.status == 202
    assert (await response.json())["event_ids"] == ["e-0", "e-1", "e-2"]
    assert sorted(e.dedupekey for e in await produced(kafka_settings, 3)) == ["k-0", "k-1", "k-2"]


@pytest.mark.parametrize("secret", [GITHUB_OLD, GITHUB_NEW], ids=["old-secret", "new-secret"])
async def test_a_signed_github_delivery_is_accepted_with_either_secret(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings, secret: str
) -> None:
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}}).encode()
    headers = github_headers(body, secret)
    response = await ingress.post("/hooks/github", data=body, headers=headers)
    assert response.status == 202
    [event] = await produced(kafka_settings, 1)
    assert (event.type, event.dedupekey, event.subject) == (
        "com.github.push",
        headers["X-GitHub-Delivery"],
        "acme/shop",
    )


async def test_a_signed_standard_webhook_is_keyed_by_its_id(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = json.dumps({"type": "invoice.paid", "data": {"invoice": "in_1"}}).encode()
    for _ in range(2):  # the sender retries: same webhook-id, new timestamp and signature
        response = await ingress.post("/hooks/billing", data=body, headers=standard_headers(body, "msg_7"))
        assert response.status == 202
    events = await produced(kafka_settings, 2)
    assert {e.dedupekey for e in events} == {"msg_7"}
    assert {e.type for e in events} == {"dev.hookline.webhook.invoice.paid"}


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN_OLD}",
        f"Bearer {TOKEN_NEW}",
        "Basic " + base64.b64encode(f"alertmanager:{TOKEN_OLD}".encode()).decode(),
    ],
    ids=["bearer-old", "bearer-new", "basic"],
)
async def test_a_secured_alertmanager_source_accepts_its_credentials(
    ingress: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    notification: Callable[..., dict[str, Any]],
    authorization: str,
) -> None:
    response = await ingress.post(
        "/hooks/am-secured", json=notification(alerts=1), headers={"Authorization": authorization}
    )
    assert response.status == 202
    [event] = await produced(kafka_settings, 1)
    assert event.hooklinesource == "am-secured"


async def test_a_source_over_its_rate_limit_answers_429_with_retry_after(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    answers = [await ingress.post("/hooks/limited", json={"n": i}) for i in range(3)]
    assert [r.status for r in answers] == [202, 202, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].content_type == "application/problem+json"
    assert len(await produced(kafka_settings, 2)) == 2


async def test_requests_with_a_bad_signature_do_not_use_up_the_rate_limit(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    forged = [
        await ingress.post("/hooks/github-limited", data=body, headers=github_headers(body, GITHUB_NEW))
        for _ in range(3)
    ]
    assert [r.status for r in forged] == [401, 401, 401]
    real = [await ingress.post("/hooks/github-limited", data=body, headers=github_headers(body)) for _ in range(3)]
    assert [r.status for r in real] == [202, 202, 429]
    assert len(await produced(kafka_settings, 2)) == 2

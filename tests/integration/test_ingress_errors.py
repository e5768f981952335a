"""Bad input of every kind gets a clear application/problem+json answer, and nothing reaches Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.settings import GatewayOptions
from hookline.settings import KafkaSettings
from tests.conftest import read_topic
from tests.integration.test_ingress_sources import (
    GITHUB_OLD,
    TOKEN_NEW,
    TOKEN_OLD,
    github_headers,
    standard_headers,
    start_gateway,
)

JSON = {"Content-Type": "application/json"}
PUSH = json.dumps({"ref": "refs/heads/main"}).encode()
INVOICE = json.dumps({"type": "invoice.paid"}).encode()
SECRETS = (TOKEN_OLD, TOKEN_NEW, GITHUB_OLD)
READ_TIMEOUT_S = 1.0


@pytest.fixture
async def ingress(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, tmp_path: Path) -> TestClient[Any, Any]:
    return await start_gateway(aiohttp_client, kafka_settings, tmp_path, read_timeout_s=READ_TIMEOUT_S)


async def nothing_produced(kafka: KafkaSettings) -> bool:
    return await read_topic(kafka, kafka.events_topic, timeout=1) == []


CASES: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("malformed-json", "orders", b'{"id": ', JSON, 400, "not valid JSON"),
    ("schema-violation", "orders", b'{"id": "o-1", "kind": "refunded"}', JSON, 400, '"location": "kind"'),
    ("missing-field", "orders", b'{"kind": "paid"}', JSON, 400, '"location": "id"'),
    ("not-an-object", "anything", b"[1, 2]", JSON, 400, "JSON object"),
    ("wrong-content-type", "orders", b'{"id": "o-1"}', {"Content-Type": "text/plain"}, 415, "application/json"),
    ("no-content-type", "anything", b"{}", {}, 415, "application/json"),
    ("not-a-cloudevent", "events", b"{}", JSON, 400, "ce-id"),
    (
        "cloudevent-xml-data",
        "events",
        b"<x/>",
        {"Content-Type": "application/xml", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/", "ce-type": "t"},
        415,
        "JSON",
    ),
    ("oversized", "orders", json.dumps({"id": "o", "kind": "paid", "x": "y" * 70_000}).encode(), JSON, 413, "limit"),
    ("missing-credentials", "am-secured", b"{}", JSON, 401, "needs credentials"),
    ("wrong-token", "am-secured", b"{}", {**JSON, "Authorization": f"Bearer {TOKEN_OLD}x"}, 401, "not valid"),
    ("wrong-scheme", "am-secured", b"{}", {**JSON, "Authorization": f"Token {TOKEN_OLD}"}, 401, "not valid"),
    ("missing-signature", "github", PUSH, {**JSON, "X-GitHub-Event": "push"}, 401, "X-Hub-Signature-256"),
    ("bad-signature", "github", PUSH, github_headers(PUSH, "not-the-secret-0123456"), 401, "does not match"),
    ("signature-of-other-body", "github", PUSH + b" ", github_headers(PUSH), 401, "does not match"),
    ("stale-timestamp", "billing", INVOICE, standard_headers(INVOICE, stamp=time.time() - 301), 401, "tolerance"),
    # A day ahead: computed when the module is collected, and the suite takes minutes.
    ("future-timestamp", "billing", INVOICE, standard_headers(INVOICE, stamp=time.time() + 86_400), 401, "future"),
    ("missing-webhook-headers", "billing", INVOICE, JSON, 401, "webhook-id"),
    ("unknown-source", "nope", b"{}", JSON, 404, "no source named 'nope'"),
]


@pytest.mark.parametrize(
    ("source", "body", "headers", "status", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_gets_a_problem_and_produces_nothing(
    ingress: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    source: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    response = await ingress.post(f"/hooks/{source}", data=body, headers=headers)
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/problem+json"
    problem = json.loads(text)
    assert problem["status"] == status and problem["type"].startswith("https://hookline.dev/problems/")
    assert detail in problem["detail"] + json.dumps(problem.get("errors", []))
    assert not any(secret in text for secret in SECRETS)
    if status == 401:
        assert response.headers["WWW-Authenticate"]
    assert await nothing_produced(kafka_settings)


async def test_an_unknown_source_answer_does_not_list_the_configured_sources(ingress: TestClient[Any, Any]) -> None:
    response = await ingress.post("/hooks/nope", data=b"{}", headers=JSON)
    assert response.status == 404
    text = await response.text()
    assert not any(name in text for name in ("alertmanager", "orders", "billing", "github"))


async def test_a_chunked_body_over_the_limit_is_refused_not_truncated(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    payload = json.dumps({"id": "o-1", "kind": "paid", "pad": "x" * 70_000}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    response = await ingress.post("/hooks/orders", data=chunks(), headers=JSON)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await nothing_produced(kafka_settings)


async def test_wrong_method_is_405_with_allow(ingress: TestClient[Any, Any]) -> None:
    response = await ingress.get("/hooks/orders")
    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert "POST" in response.headers["Allow"]


async def dribbled(ingress: TestClient[Any, Any], path: str, body: bytes) -> tuple[bytes, float]:
    """Send `body` a byte every 0.2 s; the answer (read until the server closes) and how long it took."""
    assert ingress.server.host is not None and ingress.server.port is not None
    reader, writer = await asyncio.open_connection(ingress.server.host, ingress.server.port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body[:10])
    await writer.drain()
    started = time.monotonic()

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in body[10:]:
                await asyncio.sleep(0.2)
                writer.write(bytes([byte]))
                await writer.drain()

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(until_closed(reader), timeout=10)
    finally:
        sender.cancel()
        writer.close()
    return answer, time.monotonic() - started


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed. A server that closes with the client's bytes unread
    resets the connection once more of them arrive; the answer read before that still counts
    (as an HTTP client reads it), where `reader.read()` would drop it and raise."""
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while block := await reader.read(65536):
            answer += block
    return answer


async def test_a_client_that_dribbles_its_body_is_cut_off_and_nothing_is_produced(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = b'{"id": "o-1", "kind": "paid", "pad": "' + b"x" * 200 + b'"}'
    answer, elapsed = await dribbled(ingress, "/hooks/orders", body)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in answer
    assert READ_TIMEOUT_S <= elapsed < READ_TIMEOUT_S + 3  # cut off, not left to linger
    assert await nothing_produced(kafka_settings)


async def test_a_slow_alertmanager_body_is_503_which_alertmanager_retries_not_408_which_it_drops(
    ingress: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = b'{"version": "4", "pad": "' + b"x" * 200 + b'"}'
    answer, elapsed = await dribbled(ingress, "/hooks/alertmanager", body)
    assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    assert b"Retry-After: " in answer and b"application/problem+json" in answer
    assert READ_TIMEOUT_S <= elapsed < READ_TIMEOUT_S + 3
    assert await nothing_produced(kafka_settings)


@pytest.fixture
async def default_limits(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, tmp_path: Path
) -> TestClient[Any, Any]:
    """A gateway with the default body limit, on a broker with Kafka's default message limit."""
    default = GatewayOptions.model_fields["max_body_bytes"].default
    return await start_gateway(aiohttp_client, kafka_settings, tmp_path, max_body_bytes=default)


def padded(size: int) -> bytes:
    head = b'{"pad":"'  # compact, as the event's data is
    return head + b"x" * (size - len(head) - 2) + b'"}'


async def test_a_body_just_under_the_default_limit_reaches_kafka(
    default_limits: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    body = padded(GatewayOptions.model_fields["max_body_bytes"].default - 16)
    response = await default_limits.post("/hooks/anything", data=body, headers=JSON)
    assert response.status == 202, await response.text()
    [record] = await read_topic(kafka_settings, kafka_settings.events_topic, expect=1)
    assert record.value is not None and len(record.value) == len(body)


async def test_an_event_larger_than_kafka_takes_is_413_not_503(
    default_limits: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    # Within the body limit, but the event's JSON is four times the body: 1e9 is re-serialised
    # as 1000000000.0.
    body = b'{"n": [' + b",".join([b"1e9"] * 100_000) + b"]}"
    assert len(body) < GatewayOptions.model_fields["max_body_bytes"].default
    response = await default_limits.post("/hooks/anything", data=body, headers=JSON)
    assert response.status == 413, await response.text()
    assert response.content_type == "application/problem+json"
    assert "larger than Kafka" in (await response.json())["detail"]
    assert await nothing_produced(kafka_settings)

"""The Alertmanager ingress on a real Kafka: 202 only after the ack, clear errors otherwise."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings
from hookline.stack import KafkaServer, free_port
from tests.conftest import ROOT, events_of, read_topic
from tests.eventually import eventually
from tests.integration.conftest import wait_ready


async def test_notification_becomes_one_event_per_alert_after_kafka_ack(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    body = notification(alerts=2)
    response = await gateway.post("/hooks/alertmanager", json=body)
    assert response.status == 202
    answer = await response.json()
    assert answer["accepted"] == 2 and len(answer["event_ids"]) == 2

    records = await read_topic(kafka_settings, kafka_settings.events_topic, expect=2)
    events = events_of(records)
    assert sorted(e.id for e in events) == sorted(answer["event_ids"])
    by_fp = {e.partitionkey: e for e in events}
    assert {r.key.decode() for r in records} == {a["fingerprint"] for a in body["alerts"]}
    for alert in body["alerts"]:
        event = by_fp[alert["fingerprint"]]
        assert event.type == "io.prometheus.alertmanager.alert.firing"
        assert event.subject == "HighErrorRate"
        assert event.hooklinesource == "alertmanager"
        assert event.data["alert"]["labels"] == alert["labels"]
        assert event.data["truncatedAlerts"] == 0
    headers = dict(records[0].headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert {"ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_dedupekey"} <= set(headers)


async def test_resend_of_the_same_group_carries_the_same_dedupe_keys(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    body = notification(alerts=2)
    first = await gateway.post("/hooks/alertmanager", json=body)
    for alert in body["alerts"]:
        alert["endsAt"] = "2026-11-24T10:09:00Z"  # Prometheus moves endsAt on every resend
    second = await gateway.post("/hooks/alertmanager", json=body)
    assert first.status == second.status == 202
    events = events_of(await read_topic(kafka_settings, kafka_settings.events_topic, expect=4))
    assert len(events) == 4
    assert len({e.id for e in events}) == 4
    assert len({e.dedupekey for e in events}) == 2


def _too_big(notification: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    body = notification(alerts=1)
    body["commonAnnotations"]["description"] = "x" * 70_000
    return body


@pytest.mark.parametrize(
    ("make_body", "headers", "status", "detail"),
    [
        (lambda n: b'{"version": "4", "alerts": [', {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (lambda n: json.dumps({**n(), "version": "3"}).encode(), {"Content-Type": "application/json"}, 400, "version"),
        (
            lambda n: json.dumps({**n(), "alerts": [{"status": "firing", "labels": {}, "startsAt": "x"}]}).encode(),
            {"Content-Type": "application/json"},
            400,
            "alerts[0].fingerprint",
        ),
        (lambda n: json.dumps(n()).encode(), {"Content-Type": "text/plain"}, 415, "application/json"),
        (lambda n: json.dumps(_too_big(n)).encode(), {"Content-Type": "application/json"}, 413, "limit"),
    ],
    ids=["malformed-json", "wrong-version", "missing-field", "wrong-content-type", "too-large"],
)
async def test_bad_input_gets_a_problem_and_produces_nothing(
    gateway: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    notification: Callable[..., dict[str, Any]],
    make_body: Callable[[Callable[..., dict[str, Any]]], bytes],
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    response = await gateway.post("/hooks/alertmanager", data=make_body(notification), headers=headers)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == status
    assert detail in problem["detail"] + json.dumps(problem.get("errors", []))
    assert await read_topic(kafka_settings, kafka_settings.events_topic, timeout=1) == []


async def test_chunked_body_over_the_limit_is_refused_not_truncated(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    payload = json.dumps(_too_big(notification)).encode()

    async def chunks() -> Any:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    response = await gateway.post("/hooks/alertmanager", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert await read_topic(kafka_settings, kafka_settings.events_topic, timeout=1) == []


async def test_unknown_source_and_wrong_method_are_problems(gateway: TestClient[Any, Any]) -> None:
    unknown = await gateway.post("/hooks/nope", json={})
    assert unknown.status == 404
    detail = (await unknown.json())["detail"]
    assert "'nope'" in detail and "alertmanager" not in detail  # the configured names are logged, not told
    wrong_method = await gateway.get("/hooks/alertmanager")
    assert wrong_method.status == 405
    assert wrong_method.content_type == "application/problem+json"


async def test_a_sender_that_waits_for_100_continue_is_told_to_continue(
    gateway: TestClient[Any, Any], kafka_settings: KafkaSettings, notification: Callable[..., dict[str, Any]]
) -> None:
    # curl sends `Expect: 100-continue` with any body over 1 KiB, then waits a second for the
    # interim answer; aiohttp's client waits for it for ever.
    response = await gateway.post(
        "/hooks/alertmanager", json=notification(alerts=1), expect100=True, timeout=aiohttp.ClientTimeout(total=5)
    )
    assert response.status == 202
    assert len(await read_topic(kafka_settings, kafka_settings.events_topic, expect=1)) == 1


async def test_kafka_unreachable_answers_503_with_retry_after(
    aiohttp_client: AiohttpClient, notification: Callable[..., dict[str, Any]]
) -> None:
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="unreachable")
    client = await aiohttp_client(create_app(GatewaySettings(kafka=nowhere)))
    response = await client.post("/hooks/alertmanager", json=notification())
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.content_type == "application/problem+json"
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'hookline_gateway_unavailable_total{cause="kafka_unavailable"} 1.0' in metrics


async def test_metrics_count_requests_by_source_and_status(
    gateway: TestClient[Any, Any], notification: Callable[..., dict[str, Any]]
) -> None:
    await gateway.post("/hooks/alertmanager", json=notification())
    await gateway.post("/hooks/alertmanager", data=b"{", headers={"Content-Type": "application/json"})
    text = await (await gateway.get("/metrics")).text()
    assert 'hookline_gateway_requests_total{source="alertmanager",status="202"} 1.0' in text
    assert 'hookline_gateway_requests_total{source="alertmanager",status="400"} 1.0' in text
    assert 'hookline_gateway_events_produced_total{source="alertmanager"} 2.0' in text
    assert "hookline_gateway_produce_latency_seconds_count" in text


@pytest.mark.long
async def test_kafka_going_down_answers_503_then_accepts_again_when_it_is_back(
    aiohttp_client: AiohttpClient, tmp_path: Any, notification: Callable[..., dict[str, Any]]
) -> None:
    # A broker of this test's own, so stopping it disturbs no other test.
    kafka = KafkaServer(tmp_path / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port())
    await kafka.start()
    try:
        settings = KafkaSettings(
            bootstrap_servers=kafka.bootstrap_servers, topic_prefix="down", request_timeout_ms=2000
        )
        await ensure_topics(settings)
        # The 503 comes once the produce timeout has passed: 1 s here rather than the default 5 s.
        options = GatewayOptions(produce_timeout_s=1.0)
        client = await aiohttp_client(create_app(GatewaySettings(kafka=settings, gateway=options)))
        await wait_ready(client)
        before = notification(alerts=1)
        assert (await client.post("/hooks/alertmanager", json=before)).status == 202

        kafka.stop()
        started = time.monotonic()
        down = await client.post("/hooks/alertmanager", json=notification(alerts=1))
        assert down.status == 503
        assert int(down.headers["Retry-After"]) > 0
        assert time.monotonic() - started < 10
        assert (await client.get("/readyz")).status == 503

        await kafka.start()  # same data dir: the first event is still there
        after = notification(alerts=1)

        async def post() -> int:
            response = await client.post("/hooks/alertmanager", json=after)
            assert response.status in (202, 503)
            return response.status

        await eventually(
            post, "the gateway to accept again", until=lambda status: status == 202, timeout=30, interval=0.5
        )
        fingerprints = {e.partitionkey for e in events_of(await read_topic(settings, settings.events_topic))}
        assert {before["alerts"][0]["fingerprint"], after["alerts"][0]["fingerprint"]} <= fingerprints
    finally:
        kafka.stop()

"""What every webhook source refuses before anything is produced: a body nested deeper than the
documented limit (400), and a CloudEvents batch with more events than its source allows (413)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.publisher import EventPublisher, RecentEvents
from gateway.settings import GatewayOptions, GatewaySettings
from gateway.sources.config import CloudEventsConfig
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.events import Event
from schemas.limits import MAX_JSON_DEPTH, depth_exceeds, may_nest_deeper

GITHUB_SECRET = "github-webhook-secret-1"
WHSEC_KEY = b"0123456789abcdef01234567"
CE = {"specversion": "1.0", "id": "e-1", "source": "/ci", "type": "com.example.done"}


class Recorder:
    """Stands in for the Kafka publisher: records what would have been produced."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.recent = RecentEvents()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def ready(self) -> bool:
        return True

    async def publish(self, events: Sequence[Event], *, source: str) -> None:
        self.events.extend(events)


SOURCES: dict[str, Any] = {
    "am": "alertmanager",
    "orders": "json",
    "events": {"kind": "cloudevents", "max_batch_events": 3},
    "gh": {"kind": "github", "secrets": [{"value": GITHUB_SECRET}]},
    "billing": {"kind": "standard-webhooks", "secrets": [{"value": "whsec_" + base64.b64encode(WHSEC_KEY).decode()}]},
}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient, recorder: Recorder) -> TestClient[Any, Any]:
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        temporal=TemporalSettings(address=f"127.0.0.1:{free_port()}"),
        gateway=GatewayOptions(sources=SOURCES),
    )
    return await aiohttp_client(create_app(settings, publisher=cast(EventPublisher, recorder)))


def deep(levels: int) -> Any:
    """Arrays and objects nested `levels` deep."""
    value: Any = []
    for i in range(levels - 1):
        value = {"n": value} if i % 2 else [value]
    return value


def _github(body: bytes) -> dict[str, str]:
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": signature,
    }


def _standard(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(WHSEC_KEY, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _form(doc: Any) -> bytes:
    return b"payload=" + quote(json.dumps(doc)).encode()


def _github_form(body: bytes) -> dict[str, str]:
    return {**_github(body), "Content-Type": "application/x-www-form-urlencoded"}


JSON = {"Content-Type": "application/json"}
# (path, document with the deep value in it, how the document is encoded, headers for the body)
KINDS: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any], bytes], Callable[[bytes], dict[str, str]]]] = {
    "alertmanager": ("/hooks/am", lambda v: {"version": "4", "alerts": [], "x": v}, str.encode, lambda b: JSON),
    "json": ("/hooks/orders", lambda v: {"x": v}, str.encode, lambda b: JSON),
    "cloudevents-binary": (
        "/hooks/events",
        lambda v: {"x": v},
        str.encode,
        lambda b: {**JSON, "ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "/ci", "ce-type": "t"},
    ),
    "cloudevents-structured": (
        "/hooks/events",
        lambda v: {**CE, "data": {"x": v}},
        str.encode,
        lambda b: {"Content-Type": "application/cloudevents+json"},
    ),
    "cloudevents-batch": (
        "/hooks/events",
        lambda v: [{**CE, "data": {"x": v}}],
        str.encode,
        lambda b: {"Content-Type": "application/cloudevents-batch+json"},
    ),
    "github": ("/hooks/gh", lambda v: {"x": v}, str.encode, _github),
    "github-form": ("/hooks/gh", lambda v: {"x": v}, lambda t: _form(json.loads(t)), _github_form),
    "standard-webhooks": ("/hooks/billing", lambda v: {"type": "t", "x": v}, str.encode, _standard),
}


async def post(gateway: TestClient[Any, Any], kind: str, value: Any) -> tuple[int, dict[str, Any]]:
    path, wrap, encode, headers = KINDS[kind]
    body = encode(json.dumps(wrap(value)))
    response = await gateway.post(path, data=body, headers=headers(body))
    return response.status, await response.json()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 500])
async def test_a_body_nested_over_the_limit_is_400_naming_it(
    gateway: TestClient[Any, Any], recorder: Recorder, kind: str, levels: int
) -> None:
    status, problem = await post(gateway, kind, deep(levels))
    assert (status, problem["type"]) == (400, "https://hookline.dev/problems/bad-request")
    assert f"nested more than {MAX_JSON_DEPTH} levels" in problem["detail"]
    assert recorder.events == []


@pytest.mark.parametrize("kind", ["json", "cloudevents-binary", "github", "standard-webhooks"])
async def test_a_body_nested_up_to_the_limit_is_accepted(
    gateway: TestClient[Any, Any], recorder: Recorder, kind: str
) -> None:
    status, _ = await post(gateway, kind, deep(MAX_JSON_DEPTH - 1))  # inside {"x": ...}: exactly the limit
    assert status == 202
    assert len(recorder.events) == 1


def batch(size: int) -> list[dict[str, Any]]:
    return [{**CE, "id": f"e-{i}"} for i in range(size)]


async def test_a_cloudevents_batch_up_to_its_sources_limit_is_accepted(
    gateway: TestClient[Any, Any], recorder: Recorder
) -> None:
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    response = await gateway.post("/hooks/events", data=json.dumps(batch(3)), headers=headers)
    assert response.status == 202
    assert [e.id for e in recorder.events] == ["e-0", "e-1", "e-2"]


async def test_a_cloudevents_batch_over_its_sources_limit_is_413_naming_it(
    gateway: TestClient[Any, Any], recorder: Recorder
) -> None:
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    response = await gateway.post("/hooks/events", data=json.dumps(batch(4)), headers=headers)
    problem = await response.json()
    assert (response.status, response.content_type) == (413, "application/problem+json")
    assert problem["type"] == "https://hookline.dev/problems/payload-too-large"
    assert "4 events" in problem["detail"]
    assert "at most 3" in problem["detail"]
    assert "max_batch_events" in problem["detail"]
    assert recorder.events == []


def test_the_default_cloudevents_batch_limit_is_100() -> None:
    assert CloudEventsConfig().max_batch_events == 100


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab{[]}"\\', max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="k{[", max_size=2), inner, max_size=3),
    max_leaves=60,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values, limit=st.integers(min_value=0, max_value=12))
def test_the_bracket_count_shortcut_never_lets_a_too_deep_document_through(value: Any, limit: int) -> None:
    # decode_json skips the walk when the text opens at most `limit` objects and arrays.
    raw = json.dumps(value).encode()
    if depth_exceeds(value, limit):
        assert may_nest_deeper(raw, limit)

"""`POST /api/v1/events/explain`: per definition the caller may see, whether an event (or a
webhook body of a source) would start it, why not, and with which input; it starts nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from tests.conftest import DATA, read_topic
from tests.integration.test_api_support import API, auth

CRITICAL = {
    "name": "Page On Critical",
    "trigger": {
        "type": "webhook",
        "source": "alertmanager",
        "filter": ['severity="critical"'],
        "input": {"who": "${{ labels.job }}"},
    },
    "steps": [{"name": "page", "agent": "notifier"}],
}


@pytest.fixture
async def api(api: TestClient[Any, Any]) -> TestClient[Any, Any]:
    """The API with definitions of team A (two) and team B (one)."""
    client = api
    for token, body in (
        ("a", CRITICAL),
        ("a", {"name": "Warnings", "trigger": {**CRITICAL["trigger"], "filter": ['severity="warning"']}}),
        ("b", {"name": "Other Team", "trigger": {"type": "webhook", "source": "alertmanager"}}),
    ):
        reply = await client.post(f"{API}/workflows", json=body, headers=auth(token))
        assert reply.status == 201, await reply.text()
    return client


async def explain(api: TestClient[Any, Any], body: Any, token: str = "a") -> tuple[int, Any]:
    reply = await api.post(f"{API}/events/explain", json=body, headers=auth(token))
    return reply.status, await reply.json()


async def test_a_webhook_body_is_explained_alert_by_alert_for_the_callers_definitions(
    api: TestClient[Any, Any], kafka_settings: KafkaSettings
) -> None:
    notification = json.loads((DATA / "alertmanager-firing.json").read_text())
    status, answer = await explain(api, {"source": "alertmanager", "body": notification})
    assert status == 200
    assert len(answer["events"]) == len(notification["alerts"])
    rows = {r["definition"]: r for r in answer["events"][0]["definitions"]}
    assert set(rows) == {"team-a~page-on-critical", "team-a~warnings"}  # not team B's
    assert rows["team-a~page-on-critical"]["matches"] is True
    assert rows["team-a~page-on-critical"]["input"] == {"who": "checkout"}
    assert rows["team-a~page-on-critical"]["workflow_id"] == event_run_id(
        "team-a~page-on-critical", "alertmanager", answer["events"][0]["event"]["dedupekey"]
    )
    assert rows["team-a~warnings"]["reason"] == "severity=\"warning\" does not hold (labels.severity is 'critical')"
    assert await read_topic(kafka_settings, kafka_settings.events_topic) == []  # nothing published


async def test_a_cloudevent_is_explained(api: TestClient[Any, Any]) -> None:
    event = {"source": "/ci", "type": "build.done", "hooklinesource": "github", "data": {}}
    status, answer = await explain(api, {"event": event}, token="b")
    assert status == 200
    [row] = answer["events"][0]["definitions"]
    assert (row["definition"], row["matches"]) == ("team-b~other-team", False)
    assert row["reason"] == "source is 'github', not 'alertmanager'"


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({}, 422, ""),
        ({"event": {}, "source": "alertmanager"}, 422, ""),
        ({"event": {"type": "x"}}, 422, "event.source"),
        ({"event": [1]}, 422, "event"),
        ({"source": "nope", "body": {}}, 422, "source"),
        ({"source": "alertmanager", "body": {"version": "4"}}, 422, "body.receiver"),
    ],
)
async def test_bad_explain_requests_say_where(api: TestClient[Any, Any], body: Any, status: int, where: str) -> None:
    got, problem = await explain(api, body)
    assert got == status
    assert where in [e["location"] for e in problem["errors"]], problem


async def test_explain_needs_a_token(api: TestClient[Any, Any]) -> None:
    assert (await api.post(f"{API}/events/explain", json={"event": {}})).status == 401

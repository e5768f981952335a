"""`GET /api/v1/events/{id}` and `GET /api/v1/events`: did an alert arrive, what did it start, and
why did the other definitions not match, on the real gateway, Kafka, triggers and Temporal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from hookline.settings import KafkaSettings
from tests.conftest import DATA, read_topic, running
from tests.eventually import eventually
from tests.integration.test_api_support import API, auth
from triggers.app import TriggersService

PAGE: dict[str, Any] = {
    "name": "Page",
    "trigger": {"type": "webhook", "source": "alertmanager", "filter": ['severity="critical"']},
    "steps": [{"name": "page", "agent": "notifier"}],
}
WARNINGS: dict[str, Any] = {
    **PAGE,
    "name": "Warnings",
    "trigger": {**PAGE["trigger"], "filter": ['severity="warning"']},
}
OTHER_TEAM: dict[str, Any] = {
    "name": "Other Team",
    "trigger": {"type": "webhook", "source": "alertmanager"},
    "steps": PAGE["steps"],
}


def alert(fingerprint: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / "alertmanager-firing.json").read_text())
    body["alerts"] = [{**body["alerts"][0], "fingerprint": fingerprint}]
    return body


async def create(api: TestClient[Any, Any], token: str, body: dict[str, Any]) -> None:
    reply = await api.post(f"{API}/workflows", json=body, headers=auth(token))
    assert reply.status == 201, await reply.text()


async def event_page(api: TestClient[Any, Any], event_id: str, token: str = "a") -> tuple[int, Any]:
    reply = await api.get(f"{API}/events/{event_id}", headers=auth(token))
    return reply.status, await reply.json()


async def decided(api: TestClient[Any, Any], event_id: str, token: str = "a") -> Any:
    async def page() -> Any:
        status, body = await event_page(api, event_id, token)
        return body if status == 200 and body["status"] == "decided" else None

    return await eventually(page, f"event {event_id} to be decided", until=lambda b: b is not None, timeout=20)


async def test_an_alert_is_followed_from_the_webhook_to_its_run_and_the_others_say_why_not(
    api: TestClient[Any, Any], triggers_service: Callable[..., TriggersService], kafka_settings: KafkaSettings
) -> None:
    await create(api, "a", PAGE)
    await create(api, "a", WARNINGS)
    await create(api, "b", OTHER_TEAM)

    reply = await api.post("/hooks/alertmanager", json=alert("f1"))
    assert reply.status == 202
    accepted = await reply.json()
    [event_id] = accepted["event_ids"]
    assert accepted["links"] == {event_id: f"{API}/events/{event_id}"}

    # No triggers service yet: the gateway that accepted it says it is on its way.
    status, in_flight = await event_page(api, event_id)
    assert status == 200
    assert (in_flight["status"], in_flight["source"], in_flight["decisions"]) == ("in_flight", "alertmanager", [])
    assert in_flight["hops"]["accepted_at"] and in_flight["hops"]["decided_at"] is None

    service = triggers_service()
    async with running(service.run, service.stop):
        page = await decided(api, event_id)
        # Warnings changes after the event was decided: its decision stays the old version's.
        changed: dict[str, Any] = {
            **WARNINGS,
            "trigger": {**WARNINGS["trigger"], "filter": ['severity=~"critical|warning"']},
        }
        reply = await api.put(f"{API}/workflows/team-a~warnings", json=changed, headers=auth("a"))
        assert reply.status == 200, await reply.text()
        # The triggers follow the definitions' topic on their own: the next event is theirs to
        # decide under version 2 once they have read it (the API's answer says only that it is stored).
        await eventually(
            lambda: getattr(service.definitions.get("team-a~warnings"), "version", None),
            "the triggers to read version 2 of Warnings",
            until=lambda version: version == 2,
            timeout=20,
        )

        second = await api.post("/hooks/alertmanager", json=alert("f2"))
        [second_id] = (await second.json())["event_ids"]
        await decided(api, second_id)

    assert page["event"]["id"] == event_id and page["event"]["data"]["alert"]["labels"]["severity"] == "critical"
    hops = page["hops"]
    assert hops["accepted_at"] <= hops["consumed_at"] <= hops["decided_at"]
    rows = {row["definition_id"]: row for row in page["decisions"]}
    assert set(rows) == {"team-a~page", "team-a~warnings"}  # team B's definition is not team A's business
    started = rows["team-a~page"]
    assert (started["matched"], started["outcome"], started["version"]) == (True, "started", 1)
    assert started["links"]["execution"] == f"{API}/executions/{quote(started['execution_id'], safe=':')}"
    execution = await api.get(started["links"]["execution"], headers=auth("a"))
    assert execution.status == 200 and (await execution.json())["event_id"] == event_id

    _, again = await event_page(api, event_id)
    warnings = {row["definition_id"]: row for row in again["decisions"]}["team-a~warnings"]
    assert (warnings["matched"], warnings["version"], warnings["outcome"]) == (False, 1, None)
    assert warnings["reason"] == "severity=\"warning\" does not hold (labels.severity is 'critical')"
    # The same alert now, under version 2, would match: the event page did not follow the change.
    later = {row["definition_id"]: row for row in (await decided(api, second_id))["decisions"]}
    assert (later["team-a~warnings"]["matched"], later["team-a~warnings"]["version"]) == (True, 2)

    # Team B sees the event with its own definition only; a team with none listening sees nothing.
    status, seen_by_b = await event_page(api, event_id, "b")
    assert status == 200 and [r["definition_id"] for r in seen_by_b["decisions"]] == ["team-b~other-team"]
    status, _ = await event_page(api, event_id, "seed")
    assert status == 404
    status, everything = await event_page(api, event_id, "ops")
    assert len(everything["decisions"]) == 3

    # One decision record per event on the topic (and its snapshot of the versions in force).
    records = await read_topic(kafka_settings, kafka_settings.decisions_topic, expect=4)
    assert sorted(r.key.decode() for r in records if not r.key.startswith(b"snapshot:")) == sorted(
        [event_id, second_id]
    )


async def test_events_are_listed_newest_first_filtered_and_paged(
    api: TestClient[Any, Any], triggers_service: Callable[..., TriggersService]
) -> None:
    await create(api, "a", PAGE)
    await create(api, "b", OTHER_TEAM)
    ids = []
    service = triggers_service()
    async with running(service.run, service.stop):
        for fingerprint, severity in (("l1", "critical"), ("l2", "warning"), ("l3", "critical")):
            body = alert(fingerprint)
            body["alerts"][0]["labels"]["severity"] = severity
            reply = await api.post("/hooks/alertmanager", json=body)
            [event_id] = (await reply.json())["event_ids"]
            await decided(api, event_id)
            ids.append(event_id)

    async def listing(query: str, token: str = "a") -> Any:
        reply = await api.get(f"{API}/events?{query}", headers=auth(token))
        assert reply.status == 200, await reply.text()
        return await reply.json()

    everything = await listing("source=alertmanager")
    assert [item["id"] for item in everything["items"]] == ids[::-1]
    assert [item["matched"] for item in everything["items"]] == [True, False, True]
    assert [i["id"] for i in (await listing("matched=false"))["items"]] == [ids[1]]
    # For team B every one of them matched (its definition takes any alert).
    assert [i["id"] for i in (await listing("matched=false", "b"))["items"]] == []
    assert (await listing("source=github"))["items"] == []
    until = everything["items"][1]["accepted_at"]
    assert [i["id"] for i in (await listing(f"until={until.replace('+', '%2B')}"))["items"]] == [ids[0]]

    first = await listing("limit=2")
    assert [i["id"] for i in first["items"]] == [ids[2], ids[1]] and first["next_cursor"]
    rest = await listing(f"limit=2&cursor={first['next_cursor']}")
    assert [i["id"] for i in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    reply = await api.get(f"{API}/events?limit=2&cursor={first['next_cursor']}&source=x", headers=auth("a"))
    assert reply.status == 400  # a cursor pages the listing it came from, no other
    assert (await api.get(f"{API}/events", headers=auth("seed"))).status == 200
    assert (await listing("", "seed"))["items"] == []


async def decisions_of(kafka: KafkaSettings, event_id: str, count: int) -> None:
    """Wait until the decisions topic holds `count` records of the event (each triggers process
    writes its snapshot once, then the event's decision)."""

    def found(records: list[Any]) -> bool:
        return sum(bool(r.key == event_id.encode()) for r in records) == count

    await eventually(
        lambda: read_topic(kafka, kafka.decisions_topic), f"{count} decisions of {event_id}", until=found, timeout=20
    )


async def test_a_redelivered_event_is_one_event_that_started_its_run_once(
    api: TestClient[Any, Any], triggers_service: Callable[..., TriggersService], kafka_settings: KafkaSettings
) -> None:
    """A second consumer group reads the same record again (as a redelivery after a crash does):
    the event is listed once, and its decision still says its run was started."""
    await create(api, "a", PAGE)
    reply = await api.post("/hooks/alertmanager", json=alert("r1"))
    [event_id] = (await reply.json())["event_ids"]
    first_decided = None
    for group, decisions in (("first", 1), ("again", 2)):
        service = triggers_service(group_id=f"{kafka_settings.topic_prefix}-{group}")
        async with running(service.run, service.stop):
            await decisions_of(kafka_settings, event_id, decisions)
        if first_decided is None:
            first_decided = (await decided(api, event_id))["hops"]["decided_at"]

    # Once the index has the second record (it moves the decision time on), it is merged.
    page: Any = await eventually(
        lambda: decided(api, event_id),
        "the second decision to be indexed",
        until=lambda p: p["hops"]["decided_at"] > first_decided,
        timeout=10,
    )
    [row] = page["decisions"]
    assert (row["outcome"], row["matched"]) == ("started", True)
    listed = await api.get(f"{API}/events", headers=auth("a"))
    assert [item["id"] for item in (await listed.json())["items"]] == [event_id]

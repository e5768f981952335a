"""`GET /api/v1/audit`: every write through the API (refused ones too) with who, when, what and how
it ended, kept on Kafka so that another gateway shows it too; a definition's versions say who
wrote each."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import AgentCatalog
from tests.eventually import eventually
from tests.integration.test_api_support import API, api_settings, auth, start_api

BUILD: dict[str, Any] = {"id": "build", "name": "Build", "steps": [{"name": "compile", "agent": "builder"}]}


async def audit(api: TestClient[Any, Any], query: str = "", token: str = "a") -> list[dict[str, Any]]:
    reply = await api.get(f"{API}/audit?{query}", headers=auth(token))
    assert reply.status == 200, await reply.text()
    items: list[dict[str, Any]] = (await reply.json())["items"]
    return items


async def test_every_write_is_audited_with_who_what_and_the_outcome(
    api: TestClient[Any, Any],
    aiohttp_client: AiohttpClient,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
) -> None:
    assert (await api.post(f"{API}/workflows", json=BUILD, headers=auth("a"))).status == 201
    assert (await api.post(f"{API}/workflows", json=BUILD, headers=auth("a"))).status == 409  # refused
    changed = {**BUILD, "description": "now described"}
    assert (await api.put(f"{API}/workflows/build", json=changed, headers=auth("a-write"))).status == 200
    started = await api.post(f"{API}/workflows/build/start", headers=auth("a"))
    assert started.status == 202
    execution_id = (await started.json())["execution_id"]
    assert (await api.post(f"{API}/workflows/build/start", headers=auth("a-read"))).status == 403
    assert (await api.post(f"{API}/workflows", json={**BUILD, "id": "other"}, headers=auth("b"))).status == 201
    assert (await api.delete(f"{API}/workflows/build", headers=auth("a"))).status == 200
    assert (await api.get(f"{API}/workflows", headers=auth("a"))).status == 200  # a read is not audited

    entries = await eventually(lambda: audit(api), "six entries of team A", until=lambda e: len(e) == 6)
    assert [(e["action"], e["actor"], e["status"], e["outcome"]) for e in entries] == [
        ("definition.delete", "team-a-ci", 200, "succeeded"),
        ("run.start", "team-a-viewer", 403, "refused"),
        ("run.start", "team-a-ci", 202, "succeeded"),
        ("definition.replace", "team-a-author", 200, "succeeded"),
        ("definition.create", "team-a-ci", 409, "refused"),
        ("definition.create", "team-a-ci", 201, "succeeded"),
    ]
    delete, refused_start, start, replace, refused, create = entries
    assert create["details"] == {"id": "team-a~build", "version": 1}
    assert replace["details"]["version"] == 2 and replace["target"] == {"workflow_id": "build"}
    assert start["details"]["execution_id"] == execution_id and start["details"]["definition_version"] == 2
    assert "exists" in refused["detail"] and refused_start["detail"].startswith('token "team-a-viewer"')
    assert delete["details"] == {"id": "team-a~build", "deleted": True, "version": 2}
    assert all(e["team"] == "team-a" for e in entries)
    assert [e["action"] for e in await audit(api, token="b")] == ["definition.create"]
    assert len(await audit(api, token="ops")) == 7
    assert [e["id"] for e in await audit(api, "outcome=refused")] == [refused_start["id"], refused["id"]]
    assert [e["id"] for e in await audit(api, "actor=team-a-author")] == [replace["id"]]
    first = await api.get(f"{API}/audit?limit=4", headers=auth("a"))
    cursor = (await first.json())["next_cursor"]
    rest = await api.get(f"{API}/audit?limit=4&cursor={cursor}", headers=auth("a"))
    assert [e["id"] for e in (await rest.json())["items"]] == [refused["id"], create["id"]]
    assert (await api.get(f"{API}/audit?team=team-b", headers=auth("a"))).status == 403

    # Each version says who wrote it.
    for version, author in ((1, "team-a-ci (team team-a)"), (2, "team-a-author (team team-a)")):
        reply = await api.get(f"{API}/workflows/team-a~build?version={version}", headers=auth("a"))
        assert (await reply.json())["author"] == author

    # Another gateway on the same Kafka (a second replica, or this one restarted) shows the same.
    other = await start_api(aiohttp_client, api_settings(kafka_settings, temporal_settings), agents)
    assert [e["id"] for e in await audit(other, token="ops")] == [e["id"] for e in await audit(api, token="ops")]

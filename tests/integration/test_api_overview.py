"""`GET /api/v1/overview` on the real gateway, Kafka, triggers, worker and Temporal: the numbers
are those of what the test did (events posted, runs failed and succeeded, a run waiting for an
approval, a dead letter, a pool nobody polls, the lag left by stopped triggers), for the team
that did it and no other; and `GET /api/v1/events?label=` selects events by their alert's labels."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from gateway.settings import ApiOptions, ApiToken, GatewaySettings, Scope
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import Agent, AgentCatalog
from tests.conftest import DATA, running
from tests.eventually import eventually
from tests.integration.test_api_executions import executions_agents
from tests.integration.test_api_support import API, TOKENS, start_api
from triggers.app import TriggersService

Api = TestClient[Any, Any]


@pytest.fixture
def team() -> str:
    """A team of this test's own: the session's Temporal namespace holds every test's runs."""
    return f"ov-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def agents() -> AgentCatalog:
    """The worker's agents: the examples' and one that fails."""
    return executions_agents()


def tokens(team: str) -> dict[str, ApiToken]:
    def token(name: str, team_id: str) -> ApiToken:
        return ApiToken(name=name, token=SecretStr(f"{name}-{team}-secret"), team=team_id, scopes=["read"])

    # The operator's is the one `start_api` waits for the API to be ready with.
    return {"team": token("viewer", team), "other": token("other", f"{team}-other"), "ops": TOKENS["ops"]}


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, team: str
) -> Api:
    """A gateway whose agents name one more pool than the worker serves."""
    scopes: list[Scope] = ["read", "write", "execute"]
    writer = ApiToken(name="writer", token=SecretStr(f"writer-{team}-secret"), team=team, scopes=scopes)
    settings = GatewaySettings(
        kafka=kafka_settings,
        temporal=temporal_settings,
        api=ApiOptions(tokens=[writer, *tokens(team).values()]),
    )
    idle = Agent(name="idle", command=("true",), pool="idle")
    catalog = executions_agents()
    return await start_api(aiohttp_client, settings, AgentCatalog(agents={**catalog.agents, "idle": idle}))


def auth(team: str, who: str) -> dict[str, str]:
    secret = f"writer-{team}-secret" if who == "writer" else tokens(team)[who].token.get_secret_value()
    return {"Authorization": f"Bearer {secret}"}


def alert(labels: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / "alertmanager-firing.json").read_text())
    first = body["alerts"][0]
    body["alerts"] = [{**first, "labels": {**first["labels"], **labels}, "fingerprint": uuid.uuid4().hex[:16]}]
    return body


async def define(api: Api, team: str, name: str, matchers: list[str], agent: str, **extra: Any) -> None:
    trigger = {"type": "webhook", "source": "alertmanager", **({"filter": matchers} if matchers else {})}
    body = {
        "name": name,
        "team_id": team,
        "trigger": {**trigger, **extra.pop("trigger", {})},
        "steps": [{"name": "do", "agent": agent, "retries": 1}],
        **extra,
    }
    reply = await api.post(f"{API}/workflows", json=body, headers=auth(team, "writer"))
    assert reply.status == 201, await reply.text()


async def post(api: Api, labels: dict[str, str], drop: tuple[str, ...] = ()) -> str:
    body = alert(labels)
    for name in drop:
        del body["alerts"][0]["labels"][name]
    reply = await api.post("/hooks/alertmanager", json=body)
    assert reply.status == 202, await reply.text()
    [event_id] = (await reply.json())["event_ids"]
    return str(event_id)


async def overview(api: Api, team: str, who: str = "team") -> Any:
    reply = await api.get(f"{API}/overview", headers=auth(team, who))
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def test_the_overview_counts_what_the_team_did(
    api: Api, team: str, kafka_settings: KafkaSettings, triggers_service: Callable[..., TriggersService], worker: None
) -> None:
    await define(api, team, "Watch", ['severity="warning"'], "builder")
    await define(api, team, "Break", ['severity="critical"'], "failer")
    strict = {"input": {"service": "${{ labels.job }}"}}
    schema = {"type": "object", "required": ["service"], "properties": {"service": {"type": "string"}}}
    await define(api, team, "Strict", ['dlq="yes"'], "builder", trigger=strict, inputs=schema)

    gate = {
        "name": "Gate",
        "team_id": team,
        "steps": [{"name": "ask", "approval": {"message": "Go?", "timeout": "10m"}}],
    }
    reply = await api.post(f"{API}/workflows", json=gate, headers=auth(team, "writer"))
    assert reply.status == 201, await reply.text()
    reply = await api.post(f"{API}/workflows/{team}~gate/start", json={}, headers=auth(team, "writer"))
    assert reply.status == 202, await reply.text()
    waiting = (await reply.json())["links"]["cancel"]

    service = triggers_service()
    async with running(service.run, service.stop):
        posted = [
            await post(api, {"severity": "warning"}),
            await post(api, {"severity": "critical"}),
            await post(api, {"severity": "critical"}),
            # Watch runs it; Strict cannot (no job label for its input): a dead letter.
            await post(api, {"severity": "warning", "dlq": "yes"}, drop=("job",)),
        ]

        async def decided() -> Any:
            reply = await api.get(f"{API}/events", headers=auth(team, "team"))
            return (await reply.json())["items"]

        await eventually(decided, "the 4 events decided", until=lambda items: len(items) == len(posted), timeout=30)
        events = (await overview(api, team))["events"]
        assert (events["last_minute"], events["last_5_minutes"]) == (4, 4)
        assert events["per_second"] == round(4 / 60, 3)

        done = await eventually(
            lambda: overview(api, team),
            "2 runs failed and 2 succeeded",
            until=lambda o: (
                (o["runs"]["by_status"]["failed"], o["runs"]["by_status"]["succeeded"], o["approvals"])
                == (2, 2, {"runs": 1})
            ),
            timeout=60,
            interval=0.5,
        )
    assert done["unavailable"] == {} and done["team"] == team
    # The gate's run waits for its approval: running.
    assert done["runs"]["by_status"]["running"] == 1 and done["runs"]["failed_last_hour"] == 2
    assert sum(done["runs"]["by_status"].values()) == 5
    assert (done["dlq"]["size"], done["dlq"]["last_hour"]) == (1, 1)
    pools = {p["pool"]: p["polling"] for p in done["runners"]["pools"]}
    assert pools["idle"] is False and pools["shell"] is True
    assert done["runners"]["with_pollers"] == done["runners"]["total"] - 1
    attention = {(item["kind"], item["count"]) for item in done["attention"]}
    assert {("failed_runs", 2), ("waiting_approvals", 1), ("dlq_growth", 1), ("pool_without_pollers", 1)} <= attention
    assert done["attention"][0]["kind"] == "failed_runs"

    # The triggers stopped (having committed what they did): what comes now waits, as lag.
    settled = await eventually(
        lambda: overview(api, team), "no lag", until=lambda o: o["consumer_lag"]["lag"] == 0, timeout=20
    )
    [group] = settled["consumer_lag"]["groups"]
    assert group["group"] == kafka_settings.topic_prefix  # the triggers' group of this test
    for _ in range(3):
        await post(api, {"severity": "warning"})
    lagging = await overview(api, team)
    assert lagging["consumer_lag"]["lag"] == 3
    assert sum(p["lag"] for p in lagging["consumer_lag"]["groups"][0]["partitions"]) == 3
    assert {p["topic"] for p in lagging["consumer_lag"]["groups"][0]["partitions"]} == {kafka_settings.events_topic}
    assert lagging["events"]["last_5_minutes"] == 4  # not decided: not counted

    other = await overview(api, team, "other")  # another team: none of it is its business
    assert other["events"]["last_5_minutes"] == 0 and other["dlq"]["size"] == 0
    assert sum(other["runs"]["by_status"].values()) == 0
    assert other["approvals"] == {"runs": 0}
    assert {i["kind"] for i in other["attention"]} == {"pool_without_pollers"}
    operator = await overview(api, team, "ops")
    assert operator["events"]["last_5_minutes"] >= 4 and operator["dlq"]["size"] >= 1
    reply = await api.post(waiting, headers=auth(team, "writer"))  # leave no run waiting in the namespace
    assert reply.status == 202, await reply.text()


async def test_events_are_listed_by_their_labels(
    api: Api, team: str, triggers_service: Callable[..., TriggersService]
) -> None:
    await define(api, team, "Any", [], "builder")
    service = triggers_service()
    async with running(service.run, service.stop):
        db_critical = await post(api, {"service": "db", "severity": "critical"})
        db_warning = await post(api, {"service": "db", "severity": "warning"})
        web = await post(api, {"service": "web", "severity": "critical"})

        async def listing(query: str) -> list[str]:
            reply = await api.get(f"{API}/events?{query}", headers=auth(team, "team"))
            assert reply.status == 200, await reply.text()
            return [item["id"] for item in (await reply.json())["items"]]

        async def all_decided() -> bool:
            return len(await listing("")) == 3

        await eventually(all_decided, "3 events decided", timeout=30)
    assert await listing("label=service%3Ddb") == [db_warning, db_critical]
    assert await listing("label=service%3Ddb&label=severity%3Dcritical") == [db_critical]
    assert await listing("label=service=web") == [web]
    assert await listing("label=service%3Dcache") == []
    assert await listing("label=alertname%3DHighErrorRate&limit=1") == [web]
    reply = await api.get(f"{API}/events?label=service", headers=auth(team, "team"))
    assert reply.status == 400 and "key=value" in (await reply.json())["detail"]

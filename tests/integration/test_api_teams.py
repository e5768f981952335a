"""Teams on the REST API and the tick ingress: ids scoped by team, another team's resource answered
exactly as a missing one, agents limited to teams, tick credentials bound to a team."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from hookline.definitions import DefinitionStore
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import Agent, AgentCatalog
from tests.conftest import seed_body
from tests.eventually import eventually
from tests.integration.conftest import wait_ready
from tests.integration.test_api_support import API, api_settings, auth, start_api

Api = TestClient[Any, Any]


def build(name: str = "Build", agent: str = "builder", **extra: Any) -> dict[str, Any]:
    return {"name": name, "steps": [{"name": "compile", "agent": agent}], **extra}


async def answer(response: Any) -> tuple[int, Any]:
    return response.status, await response.json()


# --- ids scoped by team -------------------------------------------------------------------------


@pytest.mark.usefixtures("definitions")  # the examples, as `make run` applies them: the default team's
@pytest.mark.parametrize("token", ["seed", "ops"])
async def test_seed_body_is_accepted_although_the_examples_hold_its_name(api: Api, token: str) -> None:
    status, created = await answer(await api.post(f"{API}/workflows", json=seed_body(), headers=auth(token)))
    assert (status, created["id"], created["team_id"]) == (201, "team-uuid~deploy-application", "team-uuid")
    example = await (await api.get(f"{API}/workflows/deploy-application", headers=auth("ops"))).json()
    assert (example["id"], example["team_id"]) == ("deploy-application", "default")


@pytest.mark.usefixtures("definitions")
async def test_a_team_token_addresses_its_own_definition_by_the_plain_id(api: Api) -> None:
    await api.post(f"{API}/workflows", json=seed_body(), headers=auth("seed"))
    status, own = await answer(await api.get(f"{API}/workflows/deploy-application", headers=auth("seed")))
    assert (status, own["id"]) == (200, "team-uuid~deploy-application")


async def test_two_teams_each_have_their_own_definition_of_one_name(api: Api) -> None:
    a = await answer(await api.post(f"{API}/workflows", json=build(), headers=auth("a")))
    b = await answer(await api.post(f"{API}/workflows", json=build(description="b's"), headers=auth("b")))
    assert (a[0], a[1]["id"], b[0], b[1]["id"]) == (201, "team-a~build", 201, "team-b~build")


async def test_a_definition_id_naming_another_team_is_refused_at_id(api: Api) -> None:
    status, body = await answer(await api.post(f"{API}/workflows", json=build(id="team-b~build"), headers=auth("a")))
    assert (status, [e["location"] for e in body["errors"]]) == (422, ["id"])


# --- another team's resource answers as a missing one ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("GET", "?version=1", None),
        ("PUT", "", build()),
        ("DELETE", "", None),
        ("POST", "/start", {}),
        ("GET", "/executions", None),
    ],
)
async def test_another_teams_definition_answers_exactly_as_a_missing_one(
    api: Api, method: str, path: str, body: Any
) -> None:
    await api.post(f"{API}/workflows", json=build(), headers=auth("a"))
    there = await answer(await api.request(method, f"{API}/workflows/team-a~build{path}", json=body, headers=auth("b")))
    missing = await answer(
        await api.request(method, f"{API}/workflows/team-a~nothing{path}", json=body, headers=auth("b"))
    )
    assert there[0] == missing[0] == 404
    assert {k: v for k, v in there[1].items() if k not in ("detail", "instance")} == {
        k: v for k, v in missing[1].items() if k not in ("detail", "instance")
    }
    assert there[1]["detail"].replace("build", "nothing") == missing[1]["detail"]


async def test_creating_the_id_another_team_uses_creates_ones_own(api: Api) -> None:
    await api.post(f"{API}/workflows", json=build(), headers=auth("a"))
    status, created = await answer(await api.post(f"{API}/workflows", json=build(), headers=auth("b")))
    assert (status, created["id"], created["versions"]) == (201, "team-b~build", [1])


async def test_put_over_another_teams_deleted_id_shows_none_of_its_versions(api: Api) -> None:
    await api.put(f"{API}/workflows/build", json=build(), headers=auth("a"))
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    await api.delete(f"{API}/workflows/build", headers=auth("a"))

    status, put = await answer(await api.put(f"{API}/workflows/build", json=build(), headers=auth("b")))

    assert (status, put["id"], put["version"], put["versions"]) == (201, "team-b~build", 1, [1])
    assert (await api.get(f"{API}/workflows/build?version=2", headers=auth("b"))).status == 404


async def test_explain_does_not_list_the_configured_sources(api: Api) -> None:
    body = {"source": "no-such-source", "body": {}}
    status, problem = await answer(await api.post(f"{API}/events/explain", json=body, headers=auth("a")))
    assert status == 422
    text = str(problem)
    assert "alertmanager" not in text and "github" not in text


# --- agents limited to teams --------------------------------------------------------------------


@pytest.fixture
async def limited(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, temporal_settings: TemporalSettings
) -> Api:
    """The API with an agent only team B may use."""
    catalog = AgentCatalog(
        agents={
            "builder": Agent(name="builder", command=("true",)),
            "prod-deployer": Agent(name="prod-deployer", command=("true",), teams=("team-b",)),
        }
    )
    return await start_api(aiohttp_client, api_settings(kafka_settings, temporal_settings), catalog)


async def test_saving_a_definition_naming_an_agent_of_other_teams_is_422_at_its_step(limited: Api) -> None:
    body = build(agent="prod-deployer")
    status, problem = await answer(await limited.post(f"{API}/workflows", json=body, headers=auth("a")))
    assert (status, problem["errors"]) == (
        422,
        [{"location": "steps[0].agent", "message": 'unknown agent "prod-deployer"'}],
    )
    put = await limited.put(f"{API}/workflows/build", json=body, headers=auth("a"))
    assert put.status == 422
    assert (await limited.post(f"{API}/workflows", json=body, headers=auth("b"))).status == 201


async def test_an_agent_of_other_teams_is_not_listed_to_a_team(limited: Api) -> None:
    names = {a["name"] for a in (await (await limited.get(f"{API}/agents", headers=auth("a"))).json())["items"]}
    assert names == {"builder"}
    every = (await (await limited.get(f"{API}/agents", headers=auth("ops"))).json())["items"]
    assert {a["name"]: a["teams"] for a in every} == {"builder": None, "prod-deployer": ["team-b"]}


async def test_an_old_definition_naming_an_agent_of_other_teams_does_not_start(
    limited: Api, kafka_settings: KafkaSettings
) -> None:
    # Saved before the agent was limited: written to the topic without the API's check.
    store = DefinitionStore(kafka_settings)
    await store.start()
    try:
        await store.put(build(agent="prod-deployer", team_id="team-a"))
    finally:
        await store.stop()
    response = await eventually(
        lambda: limited.post(f"{API}/workflows/build/start", json={}, headers=auth("a")),
        "the API's store to read the definition",
        until=lambda answer: answer.status != 404,
    )
    status, problem = await answer(response)
    assert status == 422 and "unknown agent 'prod-deployer'" in problem["detail"]


# --- tick credentials bound to a team -----------------------------------------------------------


@pytest.fixture
async def ticks(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings) -> Api:
    options = GatewayOptions.model_validate(
        {"ticks": {"enabled": True, "teams": {"team-a": {"bearer": [{"value": "team-a-tick-token-0123"}]}}}}
    )
    client = await aiohttp_client(create_app(GatewaySettings(kafka=kafka_settings, gateway=options)))
    await wait_ready(client)
    return client


async def test_a_team_tick_credential_ticks_its_team_and_no_other(ticks: Api) -> None:
    headers = {"Authorization": "Bearer team-a-tick-token-0123"}
    assert (await ticks.post("/ticks/team-a~nightly", headers=headers)).status == 202
    assert (await ticks.post("/ticks/team-b~nightly", headers=headers)).status == 401
    assert (await ticks.post("/ticks/nightly", headers=headers)).status == 401  # the default team's
    assert (await ticks.post("/ticks/team-b~nightly")).status == 401

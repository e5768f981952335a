"""REST API: workflow definitions on a real Kafka, tokens bound to teams and scopes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import AgentCatalog
from tests.conftest import seed_body
from tests.integration.conftest import create_topic, wait_ready
from tests.integration.test_api_support import API, api_settings, auth, wait_api_ready

PROBLEM = "application/problem+json"


def build(name: str = "Build", **extra: Any) -> dict[str, Any]:
    return {"name": name, "steps": [{"name": "compile", "agent": "builder"}], **extra}


async def create(api: TestClient[Any, Any], body: dict[str, Any], token: str = "a") -> dict[str, Any]:
    response = await api.post(f"{API}/workflows", json=body, headers=auth(token))
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body: dict[str, Any] = await response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- create -------------------------------------------------------------------------------------


async def test_seed_body_creates_version_1_of_its_team(api: TestClient[Any, Any]) -> None:
    response = await api.post(f"{API}/workflows", json=seed_body(), headers=auth("seed"))
    assert response.status == 201
    body = await response.json()
    # Ids are scoped by team: another team's "Deploy Application" has an id of its own.
    assert (body["id"], body["version"], body["team_id"]) == ("team-uuid~deploy-application", 1, "team-uuid")
    assert response.headers["Location"] == f"{API}/workflows/team-uuid~deploy-application"
    assert body["definition"] == {**seed_body(), "id": "team-uuid~deploy-application"}


async def test_created_definition_reads_back_as_written(api: TestClient[Any, Any]) -> None:
    await create(api, build(description="compiles"))
    body = await (await api.get(f"{API}/workflows/build", headers=auth("a"))).json()
    assert body["definition"] == build(id="team-a~build", description="compiles", team_id="team-a")
    assert (body["name"], body["description"], body["version"], body["versions"]) == ("Build", "compiles", 1, [1])


async def test_definition_without_team_id_gets_the_token_team(api: TestClient[Any, Any]) -> None:
    assert (await create(api, build()))["team_id"] == "team-a"


async def test_operator_definition_without_team_id_belongs_to_the_default_team(api: TestClient[Any, Any]) -> None:
    assert (await create(api, build(), token="ops"))["team_id"] == "default"


async def test_operator_may_create_for_any_team(api: TestClient[Any, Any]) -> None:
    assert (await create(api, build(team_id="team-b"), token="ops"))["team_id"] == "team-b"


async def test_team_id_of_another_team_is_403(api: TestClient[Any, Any]) -> None:
    response = await api.post(f"{API}/workflows", json=build(team_id="team-b"), headers=auth("a"))
    assert "team-b" in (await problem(response, 403))["detail"]


async def test_existing_id_is_409(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    response = await api.post(f"{API}/workflows", json=build(), headers=auth("a"))
    await problem(response, 409)


async def test_invalid_definition_is_422_with_every_error_located(api: TestClient[Any, Any]) -> None:
    body = {
        "name": "Broken",
        "steps": [
            {"name": "compile", "agent": "no-such-agent"},
            {"name": "ship", "agent": "deployer", "requires": ["Deploy"]},
        ],
    }
    response = await api.post(f"{API}/workflows", json=body, headers=auth("a"))
    errors = (await problem(response, 422))["errors"]
    assert {"location": "steps[1].requires[0]", "message": 'unknown step "Deploy"'} in errors
    assert (await api.get(f"{API}/workflows/broken", headers=auth("a"))).status == 404


async def test_unknown_agent_is_422(api: TestClient[Any, Any]) -> None:
    body = {"name": "Odd", "steps": [{"name": "x", "agent": "no-such-agent"}]}
    errors = (await problem(await api.post(f"{API}/workflows", json=body, headers=auth("a")), 422))["errors"]
    assert errors == [{"location": "steps[0].agent", "message": 'unknown agent "no-such-agent"'}]


async def test_malformed_json_is_400(api: TestClient[Any, Any]) -> None:
    headers = {**auth("a"), "Content-Type": "application/json"}
    response = await api.post(f"{API}/workflows", data=b'{"name": "x",', headers=headers)
    assert "not valid JSON" in (await problem(response, 400))["detail"]


@pytest.mark.parametrize("body", [b"[]", b'"Build"', b"42", b"null", b""])
async def test_body_that_is_not_an_object_is_400(api: TestClient[Any, Any], body: bytes) -> None:
    headers = {**auth("a"), "Content-Type": "application/json"}
    await problem(await api.post(f"{API}/workflows", data=body, headers=headers), 400)


async def test_too_deeply_nested_body_is_400(api: TestClient[Any, Any]) -> None:
    deep: Any = {}
    for _ in range(200):
        deep = {"x": deep}
    body = build(inputs=deep)
    await problem(await api.post(f"{API}/workflows", json=body, headers=auth("a")), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/yaml"])
async def test_body_that_is_not_json_is_415(api: TestClient[Any, Any], content_type: str) -> None:
    headers = {**auth("a"), "Content-Type": content_type}
    await problem(await api.post(f"{API}/workflows", data=b'{"name": "x"}', headers=headers), 415)


# --- authentication and teams -------------------------------------------------------------------


async def test_request_without_token_is_401_with_a_bearer_challenge(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"{API}/workflows")
    await problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer not-a-configured-token", "Basic dXNlcjpwYXNz", "Bearer", "secret-token-of-team-a"]
)
async def test_invalid_authorization_is_401(api: TestClient[Any, Any], header: str) -> None:
    response = await api.get(f"{API}/workflows", headers={"Authorization": header})
    body = await problem(response, 401)
    assert "secret-token" not in str(body)


async def test_token_without_the_write_scope_cannot_create_403(api: TestClient[Any, Any]) -> None:
    response = await api.post(f"{API}/workflows", json=build(), headers=auth("a-read"))
    assert "write" in (await problem(response, 403))["detail"]


async def test_token_without_the_write_scope_cannot_delete_403(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await problem(await api.delete(f"{API}/workflows/build", headers=auth("a-read")), 403)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_another_team_definition_is_404(api: TestClient[Any, Any], method: str) -> None:
    await create(api, build())
    response = await api.request(method, f"{API}/workflows/team-a~build", json=build(), headers=auth("b"))
    await problem(response, 404)
    assert (await api.get(f"{API}/workflows/build", headers=auth("a"))).status == 200


async def test_another_team_definition_version_is_404(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await problem(await api.get(f"{API}/workflows/build?version=1", headers=auth("b")), 404)


async def test_list_shows_only_the_token_team(api: TestClient[Any, Any]) -> None:
    await create(api, build("Alpha"))
    await create(api, build("Beta"), token="b")
    body = await (await api.get(f"{API}/workflows", headers=auth("a"))).json()
    assert [w["id"] for w in body["items"]] == ["team-a~alpha"]


async def test_operator_lists_every_team_and_filters_by_team(api: TestClient[Any, Any]) -> None:
    await create(api, build("Alpha"))
    await create(api, build("Beta"), token="b")
    every = await (await api.get(f"{API}/workflows", headers=auth("ops"))).json()
    assert [w["id"] for w in every["items"]] == ["team-a~alpha", "team-b~beta"]
    team_b = await (await api.get(f"{API}/workflows?team=team-b", headers=auth("ops"))).json()
    assert [(w["id"], w["team_id"]) for w in team_b["items"]] == [("team-b~beta", "team-b")]


async def test_list_names_each_definition_triggers(api: TestClient[Any, Any]) -> None:
    await create(api, build("Alpha", trigger={"type": "webhook", "source": "alertmanager"}))
    await create(api, build("Beta"))
    items = (await (await api.get(f"{API}/workflows", headers=auth("a"))).json())["items"]
    assert [w["triggers"] for w in items] == [[{"type": "webhook", "source": "alertmanager"}], [{"type": "manual"}]]


async def test_team_token_listing_another_team_is_403(api: TestClient[Any, Any]) -> None:
    await problem(await api.get(f"{API}/workflows?team=team-b", headers=auth("a")), 403)


async def test_list_pages_with_a_cursor(api: TestClient[Any, Any]) -> None:
    for name in ("A1", "A2", "A3"):
        await create(api, build(name))
    first = await (await api.get(f"{API}/workflows?limit=2", headers=auth("a"))).json()
    assert [w["id"] for w in first["items"]] == ["team-a~a1", "team-a~a2"]
    cursor = first["next_cursor"]
    second = await (await api.get(f"{API}/workflows", params={"limit": 2, "cursor": cursor}, headers=auth("a"))).json()
    assert ([w["id"] for w in second["items"]], second["next_cursor"]) == (["team-a~a3"], None)


@pytest.mark.parametrize("query", ["limit=0", "limit=ten", f"limit={10**6}"])
async def test_bad_page_limit_is_400(api: TestClient[Any, Any], query: str) -> None:
    await problem(await api.get(f"{API}/workflows?{query}", headers=auth("a")), 400)


# --- versions, replace, delete ------------------------------------------------------------------


async def test_put_creates_201_then_a_changed_body_is_version_2_200(api: TestClient[Any, Any]) -> None:
    created = await api.put(f"{API}/workflows/build", json=build(), headers=auth("a"))
    assert (created.status, (await created.json())["version"]) == (201, 1)
    updated = await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    body = await updated.json()
    assert (updated.status, body["version"], body["versions"]) == (200, 2, [1, 2])


async def test_put_of_an_unchanged_body_keeps_the_version(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    again = await api.put(f"{API}/workflows/build", json=build(), headers=auth("a"))
    assert (again.status, (await again.json())["version"]) == (200, 1)


async def test_version_query_reads_an_earlier_version(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    old = await (await api.get(f"{API}/workflows/build?version=1", headers=auth("a"))).json()
    current = await (await api.get(f"{API}/workflows/build", headers=auth("a"))).json()
    assert (old["version"], old["description"]) == (1, None)
    assert (current["version"], current["description"]) == (2, "v2")


async def test_unknown_version_is_404(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await problem(await api.get(f"{API}/workflows/build?version=7", headers=auth("a")), 404)


@pytest.mark.parametrize("version", ["0", "latest", "-1"])
async def test_version_that_is_not_a_positive_integer_is_400(api: TestClient[Any, Any], version: str) -> None:
    await create(api, build())
    await problem(await api.get(f"{API}/workflows/build?version={version}", headers=auth("a")), 400)


async def test_put_body_id_other_than_the_url_is_422(api: TestClient[Any, Any]) -> None:
    response = await api.put(f"{API}/workflows/build", json=build(id="other"), headers=auth("a"))
    assert (await problem(response, 422))["errors"][0]["location"] == "id"


async def test_put_url_id_that_is_not_a_valid_id_is_422(api: TestClient[Any, Any]) -> None:
    response = await api.put(f"{API}/workflows/Not%20Valid", json=build(), headers=auth("a"))
    assert (await problem(response, 422))["errors"][0]["location"] == "id"


async def test_put_keeps_the_team_of_the_definition_when_the_body_names_none(api: TestClient[Any, Any]) -> None:
    await create(api, build(team_id="team-b"), token="ops")
    updated = await api.put(f"{API}/workflows/team-b~build", json=build(description="v2"), headers=auth("ops"))
    assert ((await updated.json())["team_id"], updated.status) == ("team-b", 200)


async def test_delete_hides_the_definition_and_keeps_its_versions(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    response = await api.delete(f"{API}/workflows/build", headers=auth("a"))
    assert (response.status, await response.json()) == (200, {"id": "team-a~build", "deleted": True, "version": 1})
    gone = await problem(await api.get(f"{API}/workflows/build", headers=auth("a")), 404)
    assert "deleted" in gone["detail"]
    assert (await api.get(f"{API}/workflows/build?version=1", headers=auth("a"))).status == 200
    assert (await (await api.get(f"{API}/workflows", headers=auth("a"))).json())["items"] == []


async def test_delete_of_an_unknown_definition_is_404(api: TestClient[Any, Any]) -> None:
    await problem(await api.delete(f"{API}/workflows/nothing", headers=auth("a")), 404)


async def test_created_again_after_delete_continues_the_version_numbers(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.delete(f"{API}/workflows/build", headers=auth("a"))
    assert (await create(api, build(description="again")))["version"] == 2


# --- conditional writes (If-Match) ---------------------------------------------------------------


async def test_read_answers_the_version_as_its_etag(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    assert (await api.get(f"{API}/workflows/build", headers=auth("a"))).headers["ETag"] == '"2"'
    assert (await api.get(f"{API}/workflows/build?version=1", headers=auth("a"))).headers["ETag"] == '"1"'


@pytest.mark.parametrize("if_match", ['"1"', 'W/"1"', "1"])
async def test_put_with_the_current_version_in_if_match_writes(api: TestClient[Any, Any], if_match: str) -> None:
    await create(api, build())
    response = await api.put(
        f"{API}/workflows/build", json=build(description="v2"), headers={**auth("a"), "If-Match": if_match}
    )
    assert (response.status, response.headers["ETag"]) == (200, '"2"')


async def test_put_with_a_stale_if_match_is_412_and_writes_nothing(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    stale = await api.put(
        f"{API}/workflows/build", json=build(description="from v1"), headers={**auth("a"), "If-Match": '"1"'}
    )
    assert "version 2" in (await problem(stale, 412))["detail"]
    current = await (await api.get(f"{API}/workflows/build", headers=auth("a"))).json()
    assert (current["version"], current["description"]) == (2, "v2")


async def test_put_if_none_match_star_creates_only(api: TestClient[Any, Any]) -> None:
    headers = {**auth("a"), "If-None-Match": "*"}
    assert (await api.put(f"{API}/workflows/build", json=build(), headers=headers)).status == 201
    await problem(await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=headers), 412)


async def test_delete_with_a_stale_if_match_is_412_and_deletes_nothing(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    await problem(await api.delete(f"{API}/workflows/build", headers={**auth("a"), "If-Match": '"1"'}), 412)
    assert (await api.get(f"{API}/workflows/build", headers=auth("a"))).status == 200


async def test_start_with_a_stale_if_match_is_412(api: TestClient[Any, Any]) -> None:
    await create(api, build())
    await api.put(f"{API}/workflows/build", json=build(description="v2"), headers=auth("a"))
    await problem(await api.post(f"{API}/workflows/build/start", headers={**auth("a"), "If-Match": '"1"'}), 412)


@pytest.mark.parametrize("if_match", ['"v1"', '"1", "2"', "0", "-1", '"\uff11"'])
async def test_if_match_that_names_no_version_is_400(api: TestClient[Any, Any], if_match: str) -> None:
    await create(api, build())
    response = await api.put(f"{API}/workflows/build", json=build(), headers={**auth("a"), "If-Match": if_match})
    await problem(response, 400)


# --- validate -----------------------------------------------------------------------------------


async def test_validate_accepts_a_valid_definition_without_saving_it(api: TestClient[Any, Any]) -> None:
    response = await api.post(f"{API}/workflows/validate", json=seed_body(), headers=auth("seed"))
    valid = {"valid": True, "id": "team-uuid~deploy-application", "errors": []}
    assert (response.status, await response.json()) == (200, valid)
    assert (await api.get(f"{API}/workflows/deploy-application", headers=auth("seed"))).status == 404


async def test_validate_lists_every_error(api: TestClient[Any, Any]) -> None:
    body = {"name": "X", "steps": [{"name": "a", "agent": "nobody"}, {"name": "b", "requires": ["c"], "agent": "x"}]}
    response = await api.post(f"{API}/workflows/validate", json=body, headers=auth("a"))
    answer = await response.json()
    assert response.status == 200 and answer["valid"] is False
    assert {e["location"] for e in answer["errors"]} >= {"steps[0].agent", "steps[1].requires[0]"}


async def test_validate_reports_a_team_the_token_cannot_write(api: TestClient[Any, Any]) -> None:
    answer = await (await api.post(f"{API}/workflows/validate", json=build(team_id="team-b"), headers=auth("a"))).json()
    assert answer["valid"] is False and answer["errors"][0]["location"] == "team_id"


# --- agents -------------------------------------------------------------------------------------


async def test_agents_lists_the_catalog_without_environments(api: TestClient[Any, Any], agents: AgentCatalog) -> None:
    response = await api.get(f"{API}/agents", headers=auth("a-read"))
    items = (await response.json())["items"]
    assert [a["name"] for a in items] == sorted(agents.agents)
    assert set(items[0]) == {"name", "runner", "pool", "command", "description", "timeout_s"}
    assert "DEMO_ACTION" not in await response.text()


async def test_agents_needs_a_token(api: TestClient[Any, Any]) -> None:
    await problem(await api.get(f"{API}/agents"), 401)


# --- availability -------------------------------------------------------------------------------


async def test_api_answers_503_until_the_definitions_topic_exists_while_ingress_works(
    aiohttp_client: AiohttpClient,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
    notification: Any,
) -> None:
    fresh = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}x"})
    await create_topic(fresh, fresh.events_topic)
    client = await aiohttp_client(create_app(api_settings(fresh, temporal_settings), agents=agents))
    await wait_ready(client)

    response = await client.get(f"{API}/workflows", headers=auth("a"))
    await problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert (await client.post("/hooks/alertmanager", json=notification())).status == 202

    await ensure_topics(fresh)
    await wait_api_ready(client)

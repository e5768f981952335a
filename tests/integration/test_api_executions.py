"""REST API: manual starts and executions on a real Temporal (and Kafka for the definitions)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from temporalio.client import Client

from gateway.api.state import API as API_STATE
from hookline.definitions import DefinitionStore
from hookline.runs import build_request, start_run
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from schemas.agents import Agent, AgentCatalog
from schemas.events import Event
from schemas.workflow import slugify
from tests.conftest import EXAMPLES, seed_body
from tests.eventually import eventually
from tests.integration.conftest import wait_ready
from tests.integration.test_api_support import API, api_settings, auth, start_api

UI = "http://temporal-ui.example:8233"
Api = TestClient[Any, Any]


def executions_agents() -> AgentCatalog:
    """The example agents plus one that runs long enough to be cancelled, and one that fails."""
    base = AgentCatalog.load(EXAMPLES / "agents.yaml")
    extra = {
        "sleeper": Agent(name="sleeper", command=("sleep", "30"), timeout_s=60),
        "failer": Agent(name="failer", command=("sh", "-c", "echo broken >&2; exit 3"), timeout_s=10),
    }
    return AgentCatalog(agents={**base.agents, **extra})


async def executions_api(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, temporal_settings: TemporalSettings
) -> Api:
    """A ready API with `executions_agents`, a Temporal UI address and a short state query timeout."""
    temporal = temporal_settings.model_copy(update={"ui_url": UI})
    settings = api_settings(kafka_settings, temporal, query_timeout_s=1.0)
    return await start_api(aiohttp_client, settings, executions_agents())


@pytest.fixture
def agents() -> AgentCatalog:
    return executions_agents()


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, temporal_settings: TemporalSettings) -> Api:
    return await executions_api(aiohttp_client, kafka_settings, temporal_settings)


async def define(api: Api, body: dict[str, Any], token: str = "a") -> str:
    """Create the definition under an id of its own: every test shares the Temporal namespace."""
    body = {"id": f"{slugify(body['name'])}-{uuid.uuid4().hex[:8]}", **body}
    response = await api.post(f"{API}/workflows", json=body, headers=auth(token))
    assert response.status == 201, await response.text()
    definition_id: str = (await response.json())["id"]
    return definition_id


async def start(
    api: Api, definition_id: str, token: str = "a", *, key: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    headers = {**auth(token), **({"Idempotency-Key": key} if key else {})}
    response = await api.post(f"{API}/workflows/{definition_id}/start", headers=headers, **kwargs)
    assert response.status == 202, await response.text()
    started: dict[str, Any] = await response.json()
    return started


async def execution(api: Api, execution_id: str, token: str = "a") -> dict[str, Any]:
    response = await api.get(f"{API}/executions/{execution_id}", headers=auth(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def finished(api: Api, execution_id: str, token: str = "a") -> dict[str, Any]:
    return await eventually(
        lambda: execution(api, execution_id, token),
        f"{execution_id} to finish",
        until=lambda e: e["status"] != "running",
        timeout=60,
        interval=0.2,
    )


async def listing(api: Api, definition_id: str, count: Callable[[int], bool]) -> dict[str, Any]:
    """The executions list of `definition_id` once `count` holds for its length."""
    return await eventually(
        lambda: listed(api, definition_id),
        f"the executions of {definition_id} to be listed",
        until=lambda body: count(len(body["items"])),
        timeout=20,
        interval=0.2,
    )


SIMPLE = {"name": "Build", "steps": [{"name": "compile", "agent": "builder"}]}
LONG = {"name": "Long", "steps": [{"name": "wait", "agent": "sleeper"}]}
INPUTS = {
    "type": "object",
    "required": ["environment"],
    "properties": {"environment": {"enum": ["staging", "production"]}, "version": {"type": "string"}},
    "additionalProperties": False,
}


# --- start --------------------------------------------------------------------------------------


async def test_seed_workflow_starts_and_runs_every_step(api: Api, worker: None) -> None:
    response = await api.post(f"{API}/workflows", json=seed_body(), headers=auth("seed"))
    definition_id = (await response.json())["id"]
    started = await start(
        api, definition_id, "seed", json={"input": {"environment": "production", "version": "v1.2.3"}}
    )
    assert re.fullmatch(r"team-uuid~deploy-application:manual:[0-9a-f]{32}", started["execution_id"])
    assert (started["definition_version"], started["started"]) == (1, True)
    done = await finished(api, started["execution_id"], "seed")
    assert (done["status"], done["team_id"], done["trigger"], done["event_id"]) == (
        "succeeded",
        "team-uuid",
        "manual",
        None,
    )
    assert {name: s["status"] for name, s in done["steps"].items()} == {
        "run-tests": "succeeded",
        "build-image": "succeeded",
        "deploy": "succeeded",
    }
    assert done["started_at"] and done["closed_at"] and done["definition_version"] == 1


async def test_execution_links_to_the_temporal_ui(api: Api, worker: None) -> None:
    definition_id = await define(api, SIMPLE)
    started = await start(api, definition_id, json={})
    body = await execution(api, started["execution_id"])
    execution_id = started["execution_id"]
    assert execution_id.startswith(f"{definition_id}:manual:")
    quoted = execution_id.replace(":", "%3A")
    assert body["temporal_ui_url"] == f"{UI}/namespaces/default/workflows/{quoted}/{body['run_id']}/history"


async def test_start_without_a_body_runs_with_empty_input(api: Api, worker: None) -> None:
    started = await start(api, await define(api, SIMPLE))
    assert (await finished(api, started["execution_id"]))["status"] == "succeeded"


async def test_same_idempotency_key_answers_the_running_execution(api: Api) -> None:
    definition_id = await define(api, LONG)
    first = await start(api, definition_id, json={}, key="deploy-42")
    again = await start(api, definition_id, json={}, key="deploy-42")
    assert again["execution_id"] == first["execution_id"] and re.search(r":key:[0-9a-f]{32}$", first["execution_id"])
    assert (first["started"], again["started"]) == (True, False)


async def test_same_idempotency_key_after_the_run_finished_answers_it_again(api: Api, worker: None) -> None:
    definition_id = await define(api, SIMPLE)
    first = await start(api, definition_id, json={}, key="k1")
    await finished(api, first["execution_id"])
    again = await start(api, definition_id, json={}, key="k1")
    assert (again["execution_id"], again["started"], again["run_id"]) == (first["execution_id"], False, first["run_id"])


async def test_different_idempotency_keys_start_different_executions(api: Api) -> None:
    definition_id = await define(api, LONG)
    one = await start(api, definition_id, key="one")
    two = await start(api, definition_id, key="two")
    assert one["execution_id"] != two["execution_id"]


async def test_overlong_idempotency_key_is_400(api: Api) -> None:
    definition_id = await define(api, SIMPLE)
    headers = {**auth("a"), "Idempotency-Key": "k" * 300}
    assert (await api.post(f"{API}/workflows/{definition_id}/start", headers=headers)).status == 400


async def test_input_not_matching_the_inputs_schema_is_422_with_locations(api: Api) -> None:
    definition_id = await define(api, {**SIMPLE, "inputs": INPUTS})
    body = {"input": {"environment": "moon", "version": 3}}
    response = await api.post(f"{API}/workflows/{definition_id}/start", json=body, headers=auth("a"))
    assert response.status == 422
    assert [e["location"] for e in (await response.json())["errors"]] == ["input.environment", "input.version"]


async def test_missing_required_input_is_422_at_its_location(api: Api) -> None:
    definition_id = await define(api, {**SIMPLE, "inputs": INPUTS})
    response = await api.post(f"{API}/workflows/{definition_id}/start", json={"input": {}}, headers=auth("a"))
    assert (await response.json())["errors"] == [{"location": "input.environment", "message": "is required"}]


async def test_inputs_defaults_apply_when_the_input_omits_them(api: Api, worker: None) -> None:
    inputs = {"type": "object", "properties": {"region": {"type": "string", "default": "eu"}}}
    step = {"name": "compile", "agent": "builder", "when": "input.region == 'eu'"}
    definition_id = await define(api, {"name": "Regional", "inputs": inputs, "steps": [step]})
    done = await finished(api, (await start(api, definition_id, json={"input": {}}))["execution_id"])
    assert done["steps"]["compile"]["status"] == "succeeded"


@pytest.mark.parametrize("body", [{"input": [1]}, {"input": "x"}, {"inputs": {}}])
async def test_start_body_of_the_wrong_shape_is_422(api: Api, body: dict[str, Any]) -> None:
    definition_id = await define(api, SIMPLE)
    response = await api.post(f"{API}/workflows/{definition_id}/start", json=body, headers=auth("a"))
    assert (response.status, response.content_type) == (422, "application/problem+json")


async def test_start_with_a_body_that_is_not_json_is_415(api: Api) -> None:
    definition_id = await define(api, SIMPLE)
    headers = {**auth("a"), "Content-Type": "text/plain"}
    response = await api.post(f"{API}/workflows/{definition_id}/start", data=b"go", headers=headers)
    assert response.status == 415


async def test_start_needs_the_execute_scope(api: Api) -> None:
    definition_id = await define(api, SIMPLE)
    response = await api.post(f"{API}/workflows/{definition_id}/start", headers=auth("a-write"))
    assert response.status == 403


async def test_start_of_another_team_definition_is_404(api: Api) -> None:
    definition_id = await define(api, SIMPLE)
    assert (await api.post(f"{API}/workflows/{definition_id}/start", headers=auth("b"))).status == 404


async def test_start_of_a_definition_naming_an_agent_no_longer_configured_is_422(
    api: Api, kafka_settings: KafkaSettings
) -> None:
    # Written past the API's check, as `hookline apply` without an agents file would.
    store = DefinitionStore(kafka_settings)
    await store.start()
    try:
        await store.put({"name": "Stale", "team_id": "team-a", "steps": [{"name": "x", "agent": "retired"}]})
    finally:
        await store.stop()
    response = await eventually(
        lambda: api.post(f"{API}/workflows/stale/start", headers=auth("a")),
        "the API's store to read the definition",
        until=lambda answer: answer.status != 404,
        interval=0.2,
    )
    assert response.status == 422
    assert "retired" in (await response.json())["detail"]


# --- reading executions -------------------------------------------------------------------------


async def test_execution_without_a_worker_shows_step_states_from_history(api: Api) -> None:
    started = await start(api, await define(api, SIMPLE))
    body = await execution(api, started["execution_id"])
    assert (body["status"], body["state_source"]) == ("running", "history")
    assert body["state_note"] and set(body["steps"]) == {"compile"}
    assert body["steps"]["compile"]["status"] in {"pending", "running"}


async def test_execution_of_another_team_is_404(api: Api) -> None:
    started = await start(api, await define(api, LONG))
    for path in ("", "/history"):
        response = await api.get(f"{API}/executions/{started['execution_id']}{path}", headers=auth("b"))
        assert response.status == 404, path
    cancel = await api.post(f"{API}/executions/{started['execution_id']}/cancel", headers=auth("b"))
    assert cancel.status == 404
    assert (await execution(api, started["execution_id"], "ops"))["team_id"] == "team-a"


@pytest.mark.parametrize("execution_id", ["build:manual-0", "x" * 2000, "not a workflow"])
async def test_unknown_execution_is_404(api: Api, execution_id: str) -> None:
    response = await api.get(f"{API}/executions/{execution_id}", headers=auth("a"))
    assert (response.status, response.content_type) == (404, "application/problem+json")


async def test_execution_needs_a_token(api: Api) -> None:
    assert (await api.get(f"{API}/executions/anything")).status == 401


async def test_triggered_execution_shows_its_event(
    api: Api, temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> None:
    definition_id = await define(api, SIMPLE)
    stored = api.app[API_STATE].definitions().get(definition_id)
    assert stored is not None
    event = Event(id=str(uuid.uuid4()), source="alertmanager/test", type="test.event", dedupekey="dk1")
    request = build_request(stored, agents, temporal_settings, event=event)
    await start_run(temporal_client, temporal_settings, request, f"{definition_id}:dk1")
    body = await execution(api, f"{definition_id}:dk1")
    assert (body["trigger"], body["event_id"], body["definition_id"]) == ("event", event.id, definition_id)


async def test_history_lists_step_events_in_order(api: Api, worker: None) -> None:
    body = {"name": "Two", "steps": [{"name": "first", "agent": "builder"}, {"name": "second", "agent": "deployer"}]}
    started = await start(api, await define(api, body))
    await finished(api, started["execution_id"])
    response = await api.get(f"{API}/executions/{started['execution_id']}/history", headers=auth("a"))
    events = (await response.json())["events"]
    steps = [(e["type"], e["step"]) for e in events if e["type"].startswith("step_")]
    assert steps == [
        ("step_scheduled", "first"),
        ("step_started", "first"),
        ("step_completed", "first"),
        ("step_scheduled", "second"),
        ("step_started", "second"),
        ("step_completed", "second"),
    ]
    assert events[0]["type"] == "execution_started" and events[-1]["type"] == "execution_completed"
    assert all(e["attempt"] == 1 for e in events if e["type"] == "step_completed")


async def test_history_shows_the_error_of_a_failed_step(api: Api, worker: None) -> None:
    body = {"name": "Fails", "steps": [{"name": "break", "agent": "failer", "retries": 1}]}
    started = await start(api, await define(api, body))
    done = await finished(api, started["execution_id"])
    assert (done["status"], done["steps"]["break"]["status"]) == ("failed", "failed")
    events = (await (await api.get(f"{API}/executions/{started['execution_id']}/history", headers=auth("a"))).json())[
        "events"
    ]
    [failed] = [e for e in events if e["type"] == "step_failed"]
    assert failed["step"] == "break" and failed["error"]
    assert events[-1]["type"] == "execution_failed"


# --- listing executions -------------------------------------------------------------------------


async def listed(api: Api, definition_id: str, query: str = "", token: str = "a") -> dict[str, Any]:
    response = await api.get(f"{API}/workflows/{definition_id}/executions{query}", headers=auth(token))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_executions_list_shows_the_definition_runs(api: Api) -> None:
    definition_id = await define(api, LONG)
    ids = {(await start(api, definition_id))["execution_id"] for _ in range(2)}
    await start(api, await define(api, SIMPLE))  # another definition's run is not listed
    body = await listing(api, definition_id, lambda n: n >= 2)
    assert {e["execution_id"] for e in body["items"]} == ids
    assert all(e["status"] == "running" and e["team_id"] == "team-a" for e in body["items"])


async def test_executions_list_pages_with_a_cursor(api: Api) -> None:
    definition_id = await define(api, LONG)
    ids = {(await start(api, definition_id))["execution_id"] for _ in range(3)}
    await listing(api, definition_id, lambda n: n == 3)
    first = await listed(api, definition_id, "?limit=2")
    second = await listed(api, definition_id, f"?limit=2&cursor={first['next_cursor']}")
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert {e["execution_id"] for e in first["items"] + second["items"]} == ids


async def test_executions_list_filters_by_status(api: Api) -> None:
    definition_id = await define(api, LONG)
    await start(api, definition_id)
    await listing(api, definition_id, lambda n: n == 1)
    assert (await listed(api, definition_id, "?status=succeeded"))["items"] == []
    assert len((await listed(api, definition_id, "?status=running"))["items"]) == 1


@pytest.mark.parametrize("query", ["?cursor=bm90LWEtdG9rZW4", "?status=done", "?limit=0"])
async def test_executions_list_with_bad_parameters_is_400(api: Api, query: str) -> None:
    definition_id = await define(api, SIMPLE)
    response = await api.get(f"{API}/workflows/{definition_id}/executions{query}", headers=auth("a"))
    assert response.status == 400


async def test_executions_of_another_team_definition_are_404(api: Api) -> None:
    definition_id = await define(api, SIMPLE)
    response = await api.get(f"{API}/workflows/{definition_id}/executions", headers=auth("b"))
    assert response.status == 404


# --- cancel -------------------------------------------------------------------------------------


async def test_cancel_stops_a_running_execution(api: Api, worker: None) -> None:
    started = await start(api, await define(api, LONG))
    execution_id = started["execution_id"]
    await eventually(
        lambda: execution(api, execution_id),
        "its step to be running",
        until=lambda e: e["steps"]["wait"]["status"] == "running",
        timeout=60,
        interval=0.2,
    )
    response = await api.post(f"{API}/executions/{execution_id}/cancel", headers=auth("a"))
    assert (response.status, (await response.json())["status"]) == (202, "cancel_requested")
    done = await finished(api, execution_id)
    assert (done["status"], done["steps"]["wait"]["status"]) == ("cancelled", "cancelled")


async def test_cancel_of_a_finished_execution_is_409(api: Api, worker: None) -> None:
    started = await start(api, await define(api, SIMPLE))
    await finished(api, started["execution_id"])
    response = await api.post(f"{API}/executions/{started['execution_id']}/cancel", headers=auth("a"))
    assert (response.status, response.content_type) == (409, "application/problem+json")


async def test_cancel_needs_the_execute_scope(api: Api) -> None:
    started = await start(api, await define(api, LONG))
    response = await api.post(f"{API}/executions/{started['execution_id']}/cancel", headers=auth("a-read"))
    assert response.status == 403


# --- availability -------------------------------------------------------------------------------


async def test_api_answers_503_while_temporal_is_unreachable_and_ingress_works(
    aiohttp_client: AiohttpClient,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
    notification: Any,
) -> None:
    nowhere = temporal_settings.model_copy(update={"address": f"127.0.0.1:{free_port()}"})
    client = await start_api(aiohttp_client, api_settings(kafka_settings, nowhere), agents)
    await wait_ready(client)
    definition_id = await define(client, SIMPLE)
    for response in (
        await client.post(f"{API}/workflows/{definition_id}/start", headers=auth("a")),
        await client.get(f"{API}/executions/build:manual-1", headers=auth("a")),
        await client.get(f"{API}/workflows/{definition_id}/executions", headers=auth("a")),
    ):
        assert (response.status, response.headers.get("Retry-After")) == (503, "5")
    assert (await client.post("/hooks/alertmanager", json=notification())).status == 202

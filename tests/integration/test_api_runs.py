"""Executions across definitions: `GET /executions` by any filter, retrying one run (the version it
ran, or the latest), and bulk retry and cancel with a dry run; on the real Temporal and worker."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import AgentCatalog
from tests.eventually import eventually
from tests.integration.test_api_executions import LONG, Api, define, executions_agents, executions_api, finished, start
from tests.integration.test_api_support import API, auth


@pytest.fixture(name="agents")
def _agents() -> AgentCatalog:
    """The worker's agents: the examples', one that fails and one that sleeps."""
    return executions_agents()


@pytest.fixture(name="api")
async def _api(
    aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings, temporal_settings: TemporalSettings
) -> Api:
    return await executions_api(aiohttp_client, kafka_settings, temporal_settings)


FAILING = {"name": "Flaky", "inputs": {"type": "object"}, "steps": [{"name": "try", "agent": "failer"}]}
FIXED = {**FAILING, "steps": [{"name": "try", "agent": "builder"}]}


async def executions(api: Api, query: str, token: str = "a", status: int = 200) -> Any:
    response = await api.get(f"{API}/executions?{query}", headers=auth(token))
    assert response.status == status, await response.text()
    return await response.json()


async def listed(api: Api, query: str, count: int, token: str = "a") -> list[dict[str, Any]]:
    """The executions `query` selects, once there are `count` of them (visibility lags a little)."""
    body = await eventually(
        lambda: executions(api, query, token),
        f"{count} executions for {query}",
        until=lambda b: len(b["items"]) == count,
        timeout=20,
        interval=0.2,
    )
    items: list[dict[str, Any]] = body["items"]
    return items


async def retry(api: Api, execution_id: str, body: dict[str, Any] | None = None, status: int = 202) -> Any:
    response = await api.post(f"{API}/executions/{execution_id}/retry", json=body or {}, headers=auth("a"))
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_failed_run_is_retried_with_the_version_it_ran_or_the_latest(api: Api, worker: None) -> None:
    definition_id = await define(api, FAILING)
    failed = await start(api, definition_id, json={"input": {"ticket": "INC-7"}})
    assert (await finished(api, failed["execution_id"]))["status"] == "failed"
    reply = await api.put(f"{API}/workflows/{definition_id}", json=FIXED, headers=auth("a"))
    assert reply.status == 200 and (await reply.json())["version"] == 2

    again = await retry(api, failed["execution_id"])  # the version it ran: still failing
    assert (again["retry_of"], again["definition_version"]) == (failed["execution_id"], 1)
    repeated = await finished(api, again["execution_id"])
    assert (repeated["status"], repeated["trigger"], repeated["retry_of"]) == (
        "failed",
        "retry",
        failed["execution_id"],
    )
    assert repeated["definition_version"] == 1

    fixed = await retry(api, failed["execution_id"], {"version": "latest"})
    assert fixed["definition_version"] == 2
    done = await finished(api, fixed["execution_id"])
    assert (done["status"], done["definition_version"]) == ("succeeded", 2)
    history = await api.get(f"{API}/executions/{fixed['execution_id']}/history", headers=auth("a"))
    assert history.status == 200
    # Same input as the run it repeats.
    original = await api.get(f"{API}/executions/{failed['execution_id']}", headers=auth("a"))
    assert (await original.json())["status"] == "failed"

    problem = await retry(api, fixed["execution_id"], status=409)  # it succeeded: nothing to retry
    assert "only a failed or cancelled one" in problem["detail"]
    await retry(api, failed["execution_id"], {"version": "newest"}, status=422)
    response = await api.post(f"{API}/executions/{failed['execution_id']}/retry", headers=auth("b"))
    assert response.status == 404  # another team's run does not exist for team B

    retries = await listed(api, f"definition={definition_id}&trigger=retry", 2)
    assert {r["execution_id"] for r in retries} == {again["execution_id"], fixed["execution_id"]}
    assert all(r["retry_of"] == failed["execution_id"] for r in retries)


async def test_executions_are_listed_across_definitions_by_any_filter(api: Api) -> None:
    first, second = await define(api, LONG), await define(api, LONG)
    a1 = (await start(api, first))["execution_id"]
    a2 = (await start(api, second))["execution_id"]
    b1 = (await start(api, await define(api, LONG, "b"), "b"))["execution_id"]

    mine = await listed(api, f"definition={first}", 1)
    assert [e["execution_id"] for e in mine] == [a1] and mine[0]["trigger"] == "manual"
    both = {e["execution_id"] for e in (await executions(api, "trigger=manual&status=running&limit=200"))["items"]}
    assert {a1, a2} <= both and b1 not in both  # team A's token never lists team B's runs
    assert (await executions(api, f"definition={second}", "b"))["items"] == []
    await executions(api, "team=team-b", status=403)
    await executions(api, "trigger=webhook", status=400)
    await executions(api, "color=blue", status=400)
    assert (await executions(api, "since=2999-01-01T00:00:00Z"))["items"] == []
    everything = await listed(api, f"definition={second}", 1, token="ops")
    assert everything[0]["execution_id"] == a2


async def test_bulk_retry_and_cancel_count_first_then_act_on_what_the_filter_selects(api: Api, worker: None) -> None:
    flaky = await define(api, FAILING)
    failed = [(await start(api, flaky))["execution_id"] for _ in range(2)]
    for execution_id in failed:
        await finished(api, execution_id)
    await listed(api, f"definition={flaky}&status=failed", 2)

    async def bulk(action: str, body: dict[str, Any]) -> Any:
        response = await api.post(f"{API}/executions/{action}", json=body, headers=auth("a"))
        assert response.status == 200, await response.text()
        return await response.json()

    dry = await bulk("retry", {"filter": {"definition": flaky}, "dry_run": True})
    assert (dry["matched"], dry["done"], dry["dry_run"]) == (2, [], True)
    assert len((await executions(api, f"definition={flaky}"))["items"]) == 2  # a dry run starts nothing

    done = await bulk("retry", {"filter": {"definition": flaky}})
    assert (done["matched"], len(done["done"]), done["failed"]) == (2, 2, [])
    retried = await listed(api, f"definition={flaky}&trigger=retry", 2)
    assert sorted(r["retry_of"] for r in retried) == sorted(failed)

    long = await define(api, LONG)
    running = [(await start(api, long))["execution_id"] for _ in range(2)]
    await listed(api, f"definition={long}&status=running", 2)
    assert (await bulk("cancel", {"filter": {"definition": long}, "dry_run": True}))["matched"] == 2
    cancelled = await bulk("cancel", {"filter": {"definition": long}})
    assert sorted(cancelled["done"]) == sorted(running)
    for execution_id in running:
        assert (await finished(api, execution_id))["status"] == "cancelled"

    response = await api.post(f"{API}/executions/cancel", json={"filter": {"status": "running"}}, headers=auth("a"))
    assert response.status == 400  # the operation chooses the status itself
    response = await api.post(f"{API}/executions/retry", json={"filter": {"team": "team-b"}}, headers=auth("a"))
    assert response.status == 403

"""The seed's workflows, started through the REST API on the real stack, run with the outcomes
their shapes imply; read back from the API's step timestamps (when each step really ran)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from schemas.agents import AgentCatalog
from tests.conftest import EXAMPLES, seed_body
from tests.eventually import eventually
from tests.integration.test_api_support import API, auth

STEP_SECONDS = "0.4"


@pytest.fixture
def agents() -> AgentCatalog:
    """The demo agents of `make run`, each taking a moment, so order and overlap show."""
    catalog = AgentCatalog.load(EXAMPLES / "agents.yaml")
    slow = {n: a.model_copy(update={"env": {**a.env, "DEMO_SLEEP_S": STEP_SECONDS}}) for n, a in catalog.agents.items()}
    return AgentCatalog(agents=slow)


async def run_to_end(api: TestClient[Any, Any], workflow_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    started = await api.post(f"{API}/workflows/{workflow_id}/start", json=body, headers=auth(token))
    assert started.status == 202, await started.text()
    execution_id = (await started.json())["execution_id"]

    async def execution() -> dict[str, Any]:
        body: dict[str, Any] = await (await api.get(f"{API}/executions/{execution_id}", headers=auth(token))).json()
        return body

    return await eventually(
        execution,
        f"{execution_id} to end",
        until=lambda e: e["status"] not in ("running", "unknown"),
        timeout=30,
        interval=0.1,
    )


def times(execution: dict[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    return {
        name: (datetime.fromisoformat(s["started_at"]), datetime.fromisoformat(s["finished_at"]))
        for name, s in execution["steps"].items()
    }


@pytest.mark.usefixtures("definitions", "worker")
async def test_deploy_application_honours_order_and_requires(api: TestClient[Any, Any]) -> None:
    execution = await run_to_end(api, "deploy-application", "ops", {"input": {"version": "v1.2.3"}})
    assert execution["status"] == "succeeded"
    t = times(execution)
    tests, build, deploy = t["Run Tests"], t["Build Docker Image"], t["Deploy to Production"]
    assert build[0] >= tests[1]  # no `requires`: after the step before it
    assert deploy[0] >= max(tests[1], build[1])  # `requires` both


@pytest.mark.usefixtures("definitions", "worker")
async def test_multi_cloud_deployment_runs_its_parallel_steps_at_the_same_time(api: TestClient[Any, Any]) -> None:
    execution = await run_to_end(api, "multi-cloud-deployment", "ops", {})
    assert execution["status"] == "succeeded"
    spans = times(execution).values()
    assert len(spans) == 3
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all three overlap


@pytest.mark.usefixtures("definitions", "worker")
async def test_incident_response_steps_run_one_after_the_other(api: TestClient[Any, Any]) -> None:
    execution = await run_to_end(api, "incident-response", "ops", {})
    assert execution["status"] == "succeeded"
    t = times(execution)
    assert list(t) == ["Analyze Alert", "Take Action", "Notify Team"]
    assert t["Take Action"][0] >= t["Analyze Alert"][1]
    assert t["Notify Team"][0] >= t["Take Action"][1]
    assert execution["steps"]["Notify Team"]["output"].startswith("notifier: notified the team")


@pytest.mark.usefixtures("worker")
async def test_the_api_body_of_the_product_documentation_runs_unchanged(api: TestClient[Any, Any]) -> None:
    created = await api.post(f"{API}/workflows", json=seed_body(), headers=auth("seed"))
    assert created.status == 201, await created.text()
    workflow_id = (await created.json())["id"]
    execution = await run_to_end(
        api, workflow_id, "seed", {"input": {"environment": "production", "version": "v1.2.3"}}
    )
    assert execution["status"] == "succeeded"
    t = times(execution)
    assert list(t) == ["run-tests", "build-image", "deploy"]
    assert t["build-image"][0] >= t["run-tests"][1] and t["deploy"][0] >= t["build-image"][1]
    assert execution["steps"]["deploy"]["output"] == "deployer-agent-uuid: deployed [v1.2.3]\n"

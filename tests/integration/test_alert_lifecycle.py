"""A resolved alert reaches the run its firing started, as the trigger's `on_resolved` says:
signal (default), cancel, ignore or start. End to end: gateway → Kafka → triggers → Temporal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client, WorkflowExecutionStatus

from gateway.sources.alertmanager import alert_dedupe_key
from hookline.definitions import DefinitionStore
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from tests.conftest import read_topic, running
from tests.eventually import eventually
from tests.integration.conftest import runs_of
from tests.notifications import resolved
from triggers.app import TriggersService

DEFINITION = "alert-lifecycle"


@pytest.fixture
def agents(tmp_path: Path) -> AgentCatalog:
    """`hold` waits until the test creates the file "release"; `log` records the step's name."""
    hold = ["sh", "-c", 'echo "$HOOKLINE_STEP" >> steps.log; while [ ! -f release ]; do sleep 0.05; done']
    log = ["sh", "-c", 'echo "$HOOKLINE_STEP" >> steps.log']
    return AgentCatalog(
        agents={
            "hold": Agent(name="hold", command=tuple(hold), workdir=tmp_path, timeout_s=60),
            "log": Agent(name="log", command=tuple(log), workdir=tmp_path, timeout_s=60),
        }
    )


@pytest.fixture
def lifecycle(store: DefinitionStore, triggers_service: Callable[..., TriggersService]) -> Callable[[str], Any]:
    """Apply the lifecycle definition with the given policy and run a triggers service."""

    @contextlib.asynccontextmanager
    async def start(policy: str) -> AsyncIterator[TriggersService]:
        await store.put(
            {
                "name": "Alert Lifecycle",
                "trigger": {"type": "webhook", "source": "alertmanager", "on_resolved": policy},
                "steps": [
                    {"name": "diagnose", "agent": "hold"},
                    {"name": "remediate", "agent": "log", "when": "resolved == null"},
                    {"name": "notify", "agent": "log"},
                ],
            }
        )
        service = triggers_service()
        async with running(service.run, service.stop):
            yield service

    return start


def run_id_of(body: dict[str, Any], status: str = "firing") -> str:
    alert = body["alerts"][0]
    return event_run_id(
        DEFINITION, "alertmanager", alert_dedupe_key(body["receiver"], alert["fingerprint"], alert["startsAt"], status)
    )


async def outcome_count(service: TriggersService, outcome: str, at_least: int = 1) -> None:
    def reported() -> bool:
        value = service.metrics.registry.get_sample_value(
            "hookline_triggers_workflows_started_total", {"definition": DEFINITION, "outcome": outcome}
        )
        return (value or 0) >= at_least

    await eventually(reported, f"the triggers to report {outcome!r} {at_least} time(s)", timeout=20)


async def state_of(client: Client, workflow_id: str) -> RunState:
    return await client.get_workflow_handle(workflow_id).query("state", result_type=RunState)


def steps_run(tmp_path: Path) -> list[str]:
    log = tmp_path / "steps.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.usefixtures("worker")
async def test_resolved_alert_signals_running_workflow(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    firing = notification(alerts=1)
    workflow_id = run_id_of(firing)
    async with lifecycle("signal"):
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        await step_running(temporal_client, workflow_id, "diagnose")
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        await eventually(
            lambda: _resolved(temporal_client, workflow_id), f"{workflow_id} to see its resolution", timeout=20
        )
        (tmp_path / "release").touch()
        state = await temporal_client.get_workflow_handle(workflow_id, result_type=RunState).result()
    assert state.resolved_by is not None
    assert {n: s.status for n, s in state.steps.items()} == {
        "diagnose": "succeeded",
        "remediate": "skipped",  # its `when` saw the resolution
        "notify": "succeeded",
    }
    assert await runs_of(temporal_client, run_id_of(firing, "resolved")) == []


@pytest.mark.usefixtures("worker")
async def test_resolved_alert_cancels_running_workflow_when_told_to(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    firing = notification(alerts=1)
    workflow_id = run_id_of(firing)
    async with lifecycle("cancel") as service:
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        await step_running(temporal_client, workflow_id, "diagnose")
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        await outcome_count(service, "cancelled")
        handle = temporal_client.get_workflow_handle(workflow_id)
        await ended_as(temporal_client, workflow_id, WorkflowExecutionStatus.CANCELED)
    state = await handle.query("state", result_type=RunState)
    assert (state.status, state.steps["diagnose"].status, state.steps["notify"].status) == (
        "cancelled",
        "cancelled",
        "skipped",
    )


@pytest.mark.usefixtures("worker")
async def test_resolved_alert_after_the_run_ended_starts_nothing(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    kafka_settings: KafkaSettings,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    (tmp_path / "release").touch()
    firing = notification(alerts=1)
    async with lifecycle("signal") as service:
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        await _result(temporal_client, run_id_of(firing))
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        await outcome_count(service, "already ended")
    assert len(await runs_of(temporal_client, run_id_of(firing))) == 1
    assert await runs_of(temporal_client, run_id_of(firing, "resolved")) == []
    assert await read_topic(kafka_settings, kafka_settings.dlq_topic) == []
    assert steps_run(tmp_path) == ["diagnose", "remediate", "notify"]


@pytest.mark.usefixtures("worker")
async def test_resolved_before_firing_with_cancel_means_no_step_ever_runs(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    (tmp_path / "release").touch()
    firing = notification(alerts=1)
    workflow_id = run_id_of(firing)
    async with lifecycle("cancel") as service:
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        await outcome_count(service, "cancelled")
        await ended_as(temporal_client, workflow_id, WorkflowExecutionStatus.CANCELED)
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202  # arrives late
        await outcome_count(service, "existing")
    assert len(await runs_of(temporal_client, workflow_id)) == 1
    assert steps_run(tmp_path) == []


@pytest.mark.usefixtures("worker")
async def test_resolved_before_firing_with_signal_runs_once_knowing_it_resolved(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    (tmp_path / "release").touch()
    firing = notification(alerts=1)
    workflow_id = run_id_of(firing)
    async with lifecycle("signal") as service:
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        state = await _result(temporal_client, workflow_id)
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        await outcome_count(service, "existing")
    assert state.steps["remediate"].status == "skipped"
    assert len(await runs_of(temporal_client, workflow_id)) == 1
    assert steps_run(tmp_path) == ["diagnose", "notify"]


@pytest.mark.parametrize(("policy", "runs_for_resolution"), [("start", 1), ("ignore", 0)])
@pytest.mark.usefixtures("worker")
async def test_start_and_ignore_policies(
    gateway: TestClient[Any, Any],
    lifecycle: Callable[[str], Any],
    temporal_client: Client,
    notification: Callable[..., dict[str, Any]],
    tmp_path: Path,
    policy: str,
    runs_for_resolution: int,
) -> None:
    (tmp_path / "release").touch()
    firing = notification(alerts=1)
    async with lifecycle(policy) as service:
        assert (await gateway.post("/hooks/alertmanager", json=firing)).status == 202
        await _result(temporal_client, run_id_of(firing))
        assert (await gateway.post("/hooks/alertmanager", json=resolved(firing))).status == 202
        await outcome_count(
            service, "started" if policy == "start" else "ignored", at_least=2 if policy == "start" else 1
        )
    assert len(await runs_of(temporal_client, run_id_of(firing, "resolved"))) == runs_for_resolution
    assert len(await runs_of(temporal_client, run_id_of(firing))) == 1


async def step_running(client: Client, workflow_id: str, step: str) -> None:
    async def running() -> bool:
        try:
            state = await state_of(client, workflow_id)
        except Exception:  # not started yet
            return False
        return state is not None and state.steps[step].status == "running"

    await eventually(running, f"step {step} of {workflow_id} to be running", timeout=20)


async def _resolved(client: Client, workflow_id: str) -> bool:
    return (await state_of(client, workflow_id)).resolved_by is not None


async def ended_as(client: Client, workflow_id: str, status: WorkflowExecutionStatus) -> None:
    async def ended() -> bool:
        try:
            return (await client.get_workflow_handle(workflow_id).describe()).status == status
        except Exception:  # not started yet
            return False

    await eventually(ended, f"{workflow_id} to end {status.name}", timeout=20)


async def _result(client: Client, workflow_id: str) -> RunState:
    await ended_as(client, workflow_id, WorkflowExecutionStatus.COMPLETED)
    return await client.get_workflow_handle(workflow_id, result_type=RunState).result()

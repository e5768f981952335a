"""End to end on the real stack: Alertmanager notification → gateway → Kafka → triggers →
Temporal → worker running the Incident Response example on the shell runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client, WorkflowExecutionStatus

from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import AgentCatalog
from tests.conftest import running
from tests.eventually import eventually
from tests.integration.conftest import incident_workflow_ids, runs_of, wait_for_result
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings


@pytest.fixture
def triggers_settings(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, unique: str
) -> TriggersSettings:
    return TriggersSettings(
        kafka=kafka_settings, temporal=temporal_settings, triggers=TriggersOptions(group_id=unique, port=0)
    )


def consumed(service: TriggersService) -> float:
    """Records the service has read (its metric, as /metrics reports it)."""
    return service.metrics.registry.get_sample_value("hookline_triggers_events_consumed_total") or 0.0


@pytest.mark.usefixtures("definitions", "worker")
async def test_alert_runs_incident_response_once_even_when_posted_twice(
    gateway: TestClient[Any, Any],
    triggers_settings: TriggersSettings,
    temporal_client: Client,
    agents: AgentCatalog,
    notification: Callable[..., dict[str, Any]],
) -> None:
    body = notification(alerts=1)
    alert = body["alerts"][0]
    [workflow_id] = incident_workflow_ids(body)
    service = TriggersService(triggers_settings, temporal_client, agents=agents)
    async with running(service.run, service.stop):
        assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        state = await wait_for_result(temporal_client, workflow_id)

        assert state.status == "succeeded"
        assert list(state.steps) == ["Analyze Alert", "Take Action", "Notify Team"]
        assert [s.status for s in state.steps.values()] == ["succeeded"] * 3
        assert state.steps["Analyze Alert"].output == "analyzer: analysed the alert [HighErrorRate]\n"
        assert state.steps["Notify Team"].output == "notifier: notified the team [HighErrorRate]\n"

        # The steps ran in order: each activity was scheduled after the previous one completed.
        history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
        scheduled = [e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
        completed = [e.event_id for e in history.events if e.HasField("activity_task_completed_event_attributes")]
        assert len(scheduled) == len(completed) == 3
        assert scheduled[1] > completed[0] and scheduled[2] > completed[1]

        # Alertmanager re-sends the group (endsAt moved): the same run, no second one.
        alert["endsAt"] = "2026-11-24T10:15:00Z"
        assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        await eventually(lambda: consumed(service) >= 2, "the triggers to consume both", timeout=10, interval=0.1)
        assert consumed(service) == 2
        await asyncio.sleep(0.5)
        # Each decision was recorded, and how long that took is measured (bench/e2e.py prints it).
        registry = service.metrics.registry
        decisions = "hookline_triggers_decision_write_seconds_count"
        await eventually(lambda: registry.get_sample_value(decisions) == 2, "both decisions", timeout=10, interval=0.1)
        assert (registry.get_sample_value("hookline_triggers_decision_write_seconds_sum") or 0) > 0
    runs = await runs_of(temporal_client, workflow_id)
    assert len(runs) == 1
    assert runs[0].status == WorkflowExecutionStatus.COMPLETED


class CrashBeforeCommit(TriggersService):
    """A triggers process that dies after starting the workflows of `records` records but before
    committing them. Commits of fewer (a first fetch may bring only some partitions' records) are
    not made either: every record is delivered again after the crash."""

    crashed = False
    records = 3

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.done: dict[Any, int] = {}  # partition → next offset: the records before it are decided

    async def _commit(self, offsets: dict[Any, int]) -> None:
        self.done |= offsets
        if sum(self.done.values()) >= self.records:  # the topic is this test's own: offsets start at 0
            CrashBeforeCommit.crashed = True
            raise RuntimeError("simulated crash between start and commit")


@pytest.mark.usefixtures("definitions", "worker")
async def test_restart_between_start_and_commit_still_yields_exactly_one_run(
    gateway: TestClient[Any, Any],
    triggers_settings: TriggersSettings,
    temporal_client: Client,
    agents: AgentCatalog,
    notification: Callable[..., dict[str, Any]],
) -> None:
    body = notification(alerts=3)
    workflow_ids = incident_workflow_ids(body)
    assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
    settings = triggers_settings

    crashing = CrashBeforeCommit(settings, temporal_client, agents=agents)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await asyncio.wait_for(crashing.run(), 60)
    assert CrashBeforeCommit.crashed
    first_runs = set()
    for workflow_id in workflow_ids:  # the first process did start them (asked of the run itself:
        # the list of runs is Temporal's visibility, which may not show a start made just now)
        first_runs.add((await temporal_client.get_workflow_handle(workflow_id).describe()).run_id)

    restarted = TriggersService(settings, temporal_client, agents=agents)
    async with running(restarted.run, restarted.stop):
        # The uncommitted records are delivered again.
        await eventually(lambda: consumed(restarted) >= 3, "the records again", timeout=10, interval=0.1)
        assert consumed(restarted) == 3
        for workflow_id in workflow_ids:
            assert (await wait_for_result(temporal_client, workflow_id)).status == "succeeded"
    for workflow_id in workflow_ids:  # one run each, the one the first process started
        runs = await runs_of(temporal_client, workflow_id)  # listed once its end is
        assert len(runs) == 1 and runs[0].run_id in first_runs, runs
        assert runs[0].status == WorkflowExecutionStatus.COMPLETED
    labels = {"definition": "incident-response", "outcome": "existing"}
    existing = restarted.metrics.registry.get_sample_value("hookline_triggers_workflows_started_total", labels)
    assert existing == 3

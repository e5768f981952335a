"""A lane whose run goes on while events for its key keep coming continues as new without waiting
for the run to end. Before, it could not (the run's handle does not survive a continue-as-new),
and its history grew until Temporal's limits (50 MB, 51,200 events, 10,000 signals) ended it and
the events it held. Now the runs go on across it: a run tells its lane when it ends, and a run
that ends without telling it (terminated) frees its slot at the lane's next check.

A Temporal of the test's own suggests continuing as new after 40 events instead of 4,096."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from hookline.definitions import DefinitionStore
from hookline.runs import lane_id
from hookline.settings import TemporalSettings
from hookline.stack import TemporalServer, free_port
from schemas.agents import AgentCatalog
from schemas.run import LANE_PING, LANE_QUERY, LANE_RUN_ENDED, LaneState, RunState
from tests.conftest import EXAMPLES, running
from tests.eventually import eventually
from tests.integration.conftest import held_agent, started_runs, wait_for_result
from tests.integration.test_flow_control import alerts, remediation, run_ids
from tests.replaying import replayed
from worker.lane import HooklineLane

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(400)]

KEY = "db"


@pytest.fixture
async def own_temporal(tmp_path: Path) -> AsyncIterator[TemporalServer]:
    server = TemporalServer(
        tmp_path / "temporal", port=free_port(), dynamic_config={"limit.historyCount.suggestContinueAsNew": "40"}
    )
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def temporal_settings(own_temporal: TemporalServer, unique: str) -> TemporalSettings:
    """This module's triggers, lanes, runs and worker use the test's own Temporal."""
    return TemporalSettings(address=own_temporal.address, task_queue=unique, runner_queue_prefix=f"{unique}.runner.")


@pytest.fixture
def agents(release: Path) -> AgentCatalog:
    """`held` runs until the test creates `release` (long enough for any test: 300 s)."""
    base = AgentCatalog.load(EXAMPLES / "agents.yaml")
    return AgentCatalog(agents={**base.agents, "held": held_agent(release, timeout_s=300)})


async def lane_runs(client: Client) -> list[Any]:
    """The runs of the lane's workflow id, newest first: one per continue-as-new."""
    return [w async for w in client.list_workflows(f"WorkflowId = '{lane_id('long', KEY)}'")]


async def lane_state(client: Client) -> LaneState:
    state: LaneState = await client.get_workflow_handle(lane_id("long", KEY)).query(LANE_QUERY, result_type=LaneState)
    return state


def signalled(history: Any, name: str) -> list[Any]:
    """The signals `name` in `history`, in order (their events' attributes)."""
    return [
        event.workflow_execution_signaled_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == name
    ]


async def signals_to(client: Client, workflow_id: str, name: str) -> int:
    """How many signals `name` the workflow's current run received."""
    return len(signalled(await client.get_workflow_handle(workflow_id).fetch_history(), name))


async def told_by(client: Client) -> list[str]:
    """The runs that told the lane they ended, across all the lane's runs."""
    told = []
    for run in await lane_runs(client):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        for signal in signalled(history, LANE_RUN_ENDED):
            told += [payload.data.decode().strip('"') for payload in signal.input.payloads]
    return told


@pytest.mark.usefixtures("worker")
async def test_a_lane_continues_as_new_while_its_run_runs_and_every_event_still_runs_once_one_at_a_time(
    release: Path,
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Any,
) -> None:
    await store.put(remediation("Long", "held", concurrency={"key": "${{ labels.service }}", "limit": 1}))
    bodies = [alerts(1, service=KEY) for _ in range(40)]
    ids = [run_ids("long", body)[0] for body in bodies]

    async def post(batch: list[dict[str, Any]]) -> None:
        for body in batch:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202

    service = triggers_service()
    async with running(service.run, service.stop):
        await post(bodies[:1])
        await started_runs(temporal_client, ids[0], timeout=30)
        await post(bodies[1:20])
        # Far more than 40 events of history: the lane has continued as new, its run still running.
        await eventually(
            lambda: lane_runs(temporal_client), "a continue-as-new", until=lambda r: len(r) >= 2, timeout=60
        )
        state = await eventually(
            lambda: lane_state(temporal_client), "19 events queued", until=lambda s: len(s.queued) == 19, timeout=30
        )
        assert state.running == [ids[0]], state
        first = temporal_client.get_workflow_handle(ids[0])
        assert (await first.describe()).status == WorkflowExecutionStatus.RUNNING

        # Terminated, it cannot tell the lane: the lane's check finds it gone, and the next starts.
        await first.terminate("the test ends it without a word to its lane")
        # The next is the lane's oldest queued event, which need not be the second posted: each
        # alert's fingerprint picks its partition, and the triggers read the partitions side by side.
        state = await eventually(
            lambda: lane_state(temporal_client),
            "the lane's next run",
            until=lambda s: s.running and s.running != [ids[0]],
            timeout=90,
        )
        second = state.running[0]
        assert second in ids[1:20], state
        await started_runs(temporal_client, second, timeout=30)
        rolled = len(await lane_runs(temporal_client))
        await post(bodies[20:])
        await eventually(
            lambda: lane_runs(temporal_client), "another continue-as-new", until=lambda r: len(r) > rolled, timeout=60
        )
        # The second run was started before that: the lane's new run asks it (at once), and
        # asked, it tells the lane when it ends; the lane then starts the third, and all the
        # others one after the other. (Released only once asked: a run that ends before the ask
        # reaches it frees its slot at the ask instead, and tells nothing; seen once in CI.)
        await eventually(
            lambda: signals_to(temporal_client, second, LANE_PING),
            "the lane's new run to ask the second run",
            until=lambda pings: pings >= 1,
            timeout=60,
        )
        release.touch()
        results: dict[str, RunState] = {}
        for run in ids[1:]:
            results[run] = await wait_for_result(temporal_client, run, timeout=120)

    assert all(result.status == "succeeded" for result in results.values()), results
    spans = sorted((r.steps["fix"].started_at, r.steps["fix"].finished_at) for r in results.values())
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert started is not None and finished is not None and started >= finished, "two runs of db overlapped"
    for run in ids:
        assert len([w async for w in temporal_client.list_workflows(f"WorkflowId = '{run}'")]) == 1, run
    assert second in await told_by(temporal_client)
    # The last run's slot frees when it tells the lane, or, if the lane's question reached it as
    # it was ending (so it did not tell), at the lane's next check: within 30 s either way.
    await eventually(
        lambda: lane_state(temporal_client),
        "the lane to hold nothing",
        until=lambda s: (s.running, s.queued) == ([], []),
        timeout=45,
    )
    # Every run of the lane replays: the carried state and the checks are deterministic.
    replayer = Replayer(
        workflows=[HooklineLane],
        data_converter=temporal_client.data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    for run in await lane_runs(temporal_client):
        history = await temporal_client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        await replayed(replayer, history)

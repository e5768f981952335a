"""The gateway's metrics read from Temporal, against the real server: runs by definition and
status (a visibility count grouped by ExecutionStatus), a pool's backlog and pollers
(DescribeTaskQueue with its stats), and both as the gateway wires them to the API's state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from gateway.api.state import ApiState
from gateway.temporal_metrics import PoolCollector, pool_loads, run_counts, watch_temporal
from hookline.metrics import Registry
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.temporal import SA_DEFINITION
from schemas.agents import AgentCatalog
from schemas.run import RUN_STEP, WORKFLOW_NAME
from tests.eventually import eventually
from tests.integration.test_api_support import api_settings


@workflow.defn(name="hookline-metrics-test")
class OneStep:
    """Schedules one step on the task queue it is given, as the interpreter does on a pool's."""

    @workflow.run
    async def run(self, queue: str) -> None:
        await workflow.execute_activity(RUN_STEP, task_queue=queue, start_to_close_timeout=timedelta(minutes=5))


@activity.defn(name=RUN_STEP)
async def nothing() -> None:
    """A step served by the pool's worker (never reached: the test only needs it to poll)."""


async def test_runs_are_counted_by_definition_and_status(
    temporal_client: Client, temporal_settings: TemporalSettings, unique: str
) -> None:
    first, second = f"{unique}-first", f"{unique}-second"

    async def start(definition: str, n: int) -> WorkflowHandle[Any, Any]:
        # Nobody serves the task queue: the run stays running until it is terminated.
        return await temporal_client.start_workflow(
            WORKFLOW_NAME,
            id=f"{definition}-{n}",
            task_queue=temporal_settings.task_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_DEFINITION, definition)]),
        )

    handles = [await start(first, 1), await start(first, 2), await start(second, 1)]
    await handles[0].terminate("ended by the test")
    expected = {(first, "running"): 1, (first, "terminated"): 1, (second, "running"): 1}
    try:
        await eventually(
            lambda: run_counts(temporal_client, [first, second]),
            "Temporal's visibility to count the runs",
            until=lambda counts: counts == expected,
            timeout=15,
            interval=0.2,
        )
    finally:
        for handle in handles[1:]:
            await handle.terminate("test over")


async def test_a_pool_shows_its_backlog_and_then_its_pollers(
    temporal_client: Client, temporal_settings: TemporalSettings, unique: str
) -> None:
    registry = Registry()
    registry.register(
        PoolCollector(lambda: pool_loads(temporal_client, temporal_settings, ["waiting", "served"]), ttl_s=0)
    )

    async def sample(name: str, pool: str) -> float | None:
        await registry.refresh()
        return registry.get_sample_value(name, {"pool": pool})

    async with Worker(
        temporal_client,
        task_queue=temporal_settings.task_queue,
        workflows=[OneStep],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await temporal_client.start_workflow(
            OneStep.run, temporal_settings.runner_queue("waiting"), id=unique, task_queue=temporal_settings.task_queue
        )
        backlog = await eventually(
            lambda: sample("hookline_pool_backlog", "waiting"),
            "a step waiting on the pool nobody serves",
            until=lambda value: value is not None and value >= 1,
            timeout=30,
            interval=0.2,
        )
        assert backlog == 1
        assert await sample("hookline_pool_pollers", "waiting") == 0
        assert (await sample("hookline_pool_backlog_age_seconds", "waiting") or 0) >= 0
        await temporal_client.get_workflow_handle(unique).terminate("test over")
    async with Worker(temporal_client, task_queue=temporal_settings.runner_queue("served"), activities=[nothing]):
        await eventually(
            lambda: sample("hookline_pool_pollers", "served"),
            "the served pool's worker to poll",
            until=lambda value: value is not None and value >= 1,
            timeout=30,
            interval=0.2,
        )


async def test_the_gateway_reads_its_agents_pools_through_the_api(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> None:
    state = ApiState(api_settings(kafka_settings, temporal_settings), agents, {})
    await state.open()
    try:
        registry = Registry()
        watch_temporal(registry, state)

        async def shell_pollers() -> float | None:
            await registry.refresh()
            return registry.get_sample_value("hookline_pool_pollers", {"pool": "shell"})

        # Absent until the API has read its definitions (the pools of their inline actions count too).
        pollers = await eventually(
            shell_pollers, "the shell pool's pollers", until=lambda v: v is not None, timeout=30, interval=0.5
        )
        assert pollers == 0
    finally:
        await state.close()

"""The gateway's metrics: 503s counted by cause where they become responses, and what it reads
from Temporal when scraped (pool backlogs and pollers, runs by definition and status; against
a fake client here, against the real server in tests/integration/test_temporal_metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from pytest_aiohttp import AiohttpClient
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueueStats
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import WorkflowExecutionCount, WorkflowExecutionCountAggregationGroup

from gateway.errors import UNAVAILABLE_COUNTER, GatewayError, SlowBody, TooManyRequests, Unavailable, problem_middleware
from gateway.metrics import GatewayMetrics
from gateway.temporal_metrics import PoolCollector, PoolLoad, RunCollector, pool_loads, run_counts
from hookline.settings import TemporalSettings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def answer(aiohttp_client: AiohttpClient, error: GatewayError, metrics: GatewayMetrics) -> int:
    async def fail(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[problem_middleware])
    app[UNAVAILABLE_COUNTER] = metrics.unavailable
    app.router.add_get("/", fail)
    return (await (await aiohttp_client(app)).get("/")).status


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (Unavailable("Kafka did not acknowledge", retry_after_s=1, cause="kafka_unacked"), "kafka_unacked"),
        (Unavailable("no Temporal client", retry_after_s=1, cause="temporal_unavailable"), "temporal_unavailable"),
        (SlowBody("the body did not arrive", retry_after_s=1), "slow_body"),
        (Unavailable("raised without a cause", retry_after_s=1), "unclassified"),
    ],
)
async def test_each_503_is_counted_by_its_cause(aiohttp_client: AiohttpClient, error: Unavailable, cause: str) -> None:
    metrics = GatewayMetrics()
    assert await answer(aiohttp_client, error, metrics) == 503
    assert metrics.registry.get_sample_value("hookline_gateway_unavailable_total", {"cause": cause}) == 1


async def test_a_429_is_not_a_503(aiohttp_client: AiohttpClient) -> None:
    metrics = GatewayMetrics()
    assert await answer(aiohttp_client, TooManyRequests("over the limit", retry_after_s=1), metrics) == 429
    unavailable = next(f for f in metrics.registry.collect() if f.name == "hookline_gateway_unavailable")
    assert unavailable.samples == []


class FakeService:
    """Temporal's DescribeTaskQueue: one answer per task queue."""

    def __init__(self, answers: dict[str, DescribeTaskQueueResponse]) -> None:
        self.answers = answers
        self.requests: list[DescribeTaskQueueRequest] = []

    async def describe_task_queue(self, request: DescribeTaskQueueRequest) -> DescribeTaskQueueResponse:
        self.requests.append(request)
        return self.answers[request.task_queue.name]


class FakeClient:
    def __init__(self, answers: dict[str, DescribeTaskQueueResponse] | None = None) -> None:
        self.workflow_service = FakeService(answers or {})
        self.queries: list[str] = []

    async def count_workflows(self, query: str) -> WorkflowExecutionCount:
        self.queries.append(query)
        if "'deploy'" in query:
            groups = [("Running", 2), ("Completed", 5), ("TimedOut", 1)]
        else:
            groups = [("Failed", 3)]
        return WorkflowExecutionCount(
            count=sum(n for _, n in groups),
            groups=[WorkflowExecutionCountAggregationGroup(count=n, group_values=[s]) for s, n in groups],
        )


def queue(backlog: int, age_s: int, polls_ago_s: list[int]) -> DescribeTaskQueueResponse:
    def at(ago_s: int) -> Timestamp:
        stamp = Timestamp()
        stamp.FromDatetime(NOW - timedelta(seconds=ago_s))
        return stamp

    return DescribeTaskQueueResponse(
        pollers=[PollerInfo(last_access_time=at(s)) for s in polls_ago_s],
        stats=TaskQueueStats(approximate_backlog_count=backlog, approximate_backlog_age=Duration(seconds=age_s)),
    )


async def test_pool_loads_are_backlog_its_age_and_fresh_pollers() -> None:
    temporal = TemporalSettings(runner_queue_prefix="hl.runner.")
    client: Any = FakeClient({"hl.runner.shell": queue(3, 40, [5, 10, 600]), "hl.runner.ssh": queue(0, 0, [600])})
    loads = await pool_loads(client, temporal, ["shell", "ssh"], now=NOW)
    assert loads == {
        "shell": PoolLoad(backlog=3, backlog_age_s=40.0, pollers=2),  # the poll 10 minutes ago is a gone worker
        "ssh": PoolLoad(backlog=0, backlog_age_s=0.0, pollers=0),
    }
    assert all(r.report_stats for r in client.workflow_service.requests)


async def test_runs_are_counted_per_definition_grouped_by_status() -> None:
    client: Any = FakeClient()
    counts = await run_counts(client, ["deploy", "it's"])
    assert counts == {
        ("deploy", "running"): 2,
        ("deploy", "completed"): 5,
        ("deploy", "timed_out"): 1,
        ("it's", "failed"): 3,
    }
    assert sorted(client.queries) == [
        "WorkflowType = 'HooklineRun' AND HooklineDefinitionId = 'deploy' GROUP BY ExecutionStatus",
        "WorkflowType = 'HooklineRun' AND HooklineDefinitionId = 'it\\'s' GROUP BY ExecutionStatus",
    ]


async def value(value: Any) -> Any:
    return value


async def test_pool_and_run_collectors_expose_their_gauges() -> None:
    registry = GatewayMetrics().registry
    registry.register(PoolCollector(lambda: value({"shell": PoolLoad(backlog=3, backlog_age_s=40.0, pollers=0)})))
    registry.register(RunCollector(lambda: value({("deploy", "failed"): 2})))
    await registry.refresh()
    expected = {
        ("hookline_pool_backlog", "shell"): 3,
        ("hookline_pool_backlog_age_seconds", "shell"): 40,
        ("hookline_pool_pollers", "shell"): 0,
    }
    for (name, pool), count in expected.items():
        assert registry.get_sample_value(name, {"pool": pool}) == count
    assert registry.get_sample_value("hookline_runs", {"definition": "deploy", "status": "failed"}) == 2

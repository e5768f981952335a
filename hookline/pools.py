"""Runner pools as Temporal sees them: for `GET /api/v1/runners`, each pool, the runner kinds
its agents use, and whether any worker polls its task queue now (DescribeTaskQueue), so a step
stuck on a pool that no worker serves is visible; for the gateway's metrics, also its backlog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import Client

from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog
from schemas.workflow import WorkflowDefinition

__all__ = [
    "POLL_FRESH_S",
    "PoolStatus",
    "describe_pools",
    "describe_queue",
    "fresh",
    "polled_at",
    "pools_of",
]

#: A poller seen this recently counts as polling now. Temporal records a poller when its long
#: poll (up to a minute on an idle queue) starts, and keeps a stopped one listed for minutes.
POLL_FRESH_S = 75.0


class PoolStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str
    task_queue: str
    kinds: tuple[str, ...]
    polling: bool
    pollers: int
    last_poll: datetime | None = None


def pools_of(
    agents: AgentCatalog, kinds: Iterable[str] = (), definitions: Iterable[WorkflowDefinition] = ()
) -> dict[str, tuple[str, ...]]:
    """Pool name → the runner kinds its agents use; each of `kinds` also has its own pool, and so
    has each pool only an inline action of `definitions` names (with that action's kind)."""
    pools: dict[str, set[str]] = {kind: {kind} for kind in kinds}
    for agent in agents.agents.values():
        pools.setdefault(agent.pool_name, set()).add(agent.runner)
    for definition in definitions:
        for step in definition.all_steps():
            if step.action is not None:
                pools.setdefault(step.action.pool or step.action.runner, {step.action.runner})
    return {name: tuple(sorted(found)) for name, found in sorted(pools.items())}


async def describe_queue(
    client: Client, temporal: TemporalSettings, pool: str, *, stats: bool = False
) -> DescribeTaskQueueResponse:
    """Temporal's view of `pool`'s activity task queue: its pollers, and with `stats` its backlog."""
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=temporal.namespace,
            task_queue=TaskQueue(name=temporal.runner_queue(pool), kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=stats,
        )
    )


def polled_at(response: DescribeTaskQueueResponse) -> list[datetime]:
    """When each poller Temporal lists last polled (a stopped one stays listed for minutes)."""
    return [p.last_access_time.ToDatetime(tzinfo=UTC) for p in response.pollers if p.HasField("last_access_time")]


def fresh(seen: list[datetime], now: datetime, fresh_s: float = POLL_FRESH_S) -> list[datetime]:
    """The polls of `seen` recent enough to count as polling now."""
    return [t for t in seen if now - t <= timedelta(seconds=fresh_s)]


async def describe_pools(
    client: Client,
    temporal: TemporalSettings,
    pools: Mapping[str, Iterable[str]],
    *,
    fresh_s: float = POLL_FRESH_S,
    now: datetime | None = None,
) -> list[PoolStatus]:
    """Each pool's status from its activity task queue's pollers."""
    now = now or datetime.now(UTC)
    statuses = []
    for pool, kinds in pools.items():
        seen = polled_at(await describe_queue(client, temporal, pool))
        polling = fresh(seen, now, fresh_s)
        statuses.append(
            PoolStatus(
                pool=pool,
                task_queue=temporal.runner_queue(pool),
                kinds=tuple(kinds),
                polling=bool(polling),
                pollers=len(polling),
                last_poll=max(seen, default=None),
            )
        )
    return statuses

"""Runner pools as Temporal sees them: for `GET /api/v1/runners`, each pool, the runner kinds
its agents use, and whether any worker polls its task queue now (DescribeTaskQueue), so a step
stuck on a pool that no worker serves is visible."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog

__all__ = ["POLL_FRESH_S", "PoolStatus", "describe_pools", "pools_of"]

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


def pools_of(agents: AgentCatalog, kinds: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """Pool name → the runner kinds its agents use; each of `kinds` also has its own pool."""
    pools: dict[str, set[str]] = {kind: {kind} for kind in kinds}
    for agent in agents.agents.values():
        pools.setdefault(agent.pool_name, set()).add(agent.runner)
    return {name: tuple(sorted(found)) for name, found in sorted(pools.items())}


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
        queue = temporal.runner_queue(pool)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=temporal.namespace,
                task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        seen = [p.last_access_time.ToDatetime(tzinfo=UTC) for p in response.pollers if p.HasField("last_access_time")]
        fresh = [t for t in seen if now - t <= timedelta(seconds=fresh_s)]
        statuses.append(
            PoolStatus(
                pool=pool,
                task_queue=queue,
                kinds=tuple(kinds),
                polling=bool(fresh),
                pollers=len(fresh),
                last_poll=max(seen, default=None),
            )
        )
    return statuses

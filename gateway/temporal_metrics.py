"""Metrics the gateway reads from Temporal when it is scraped: each runner pool's backlog and
pollers (DescribeTaskQueue with its stats), and the runs Temporal keeps by definition and status.

Temporal's visibility groups a count by `ExecutionStatus` alone (`GROUP BY` takes one field, and
not a search attribute), so the runs cost one count per definition: they are read at most every
30 s, a few at a time. Both are bounded in time, and absent from a scrape while Temporal (or the
API's definitions) cannot be read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from temporalio.client import Client

from gateway.api.state import ApiState
from hookline.metrics import Scraped
from hookline.pools import POLL_FRESH_S, describe_queue, fresh, polled_at, pools_of
from hookline.settings import TemporalSettings
from hookline.temporal import SA_DEFINITION, query_literal
from schemas.run import WORKFLOW_NAME

__all__ = ["PoolCollector", "PoolLoad", "RunCollector", "pool_loads", "run_counts", "watch_temporal"]

#: Runs counted at once: each is a visibility query, and there is one per definition.
COUNTS_AT_ONCE = 4


@dataclass(frozen=True, slots=True)
class PoolLoad:
    """A pool's task queue now: tasks waiting, how long the oldest has waited, workers polling."""

    backlog: int
    backlog_age_s: float
    pollers: int


async def pool_loads(
    client: Client, temporal: TemporalSettings, pools: Iterable[str], *, now: datetime | None = None
) -> dict[str, PoolLoad]:
    """The load of each of `pools`, described concurrently."""
    now = now or datetime.now(UTC)

    async def load(pool: str) -> PoolLoad:
        response = await describe_queue(client, temporal, pool, stats=True)
        return PoolLoad(
            backlog=response.stats.approximate_backlog_count,
            backlog_age_s=response.stats.approximate_backlog_age.ToTimedelta().total_seconds(),
            pollers=len(fresh(polled_at(response), now)),
        )

    names = list(pools)
    return dict(zip(names, await asyncio.gather(*(load(p) for p in names)), strict=True))


def _status(name: str) -> str:
    """Temporal's status name as a label value: `TimedOut` → `timed_out`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


async def run_counts(client: Client, definitions: Iterable[str]) -> dict[tuple[str, str], int]:
    """(definition, status) → the runs of that definition Temporal keeps in that status."""
    limit = asyncio.Semaphore(COUNTS_AT_ONCE)

    async def count(definition: str) -> dict[tuple[str, str], int]:
        query = (
            f"WorkflowType = {query_literal(WORKFLOW_NAME)} AND {SA_DEFINITION.name} = {query_literal(definition)}"
            " GROUP BY ExecutionStatus"
        )
        async with limit:
            counted = await client.count_workflows(query)
        return {(definition, _status(str(group.group_values[0]))): group.count for group in counted.groups}

    counts: dict[tuple[str, str], int] = {}
    for found in await asyncio.gather(*(count(d) for d in definitions)):
        counts.update(found)
    return counts


class PoolCollector(Scraped[Mapping[str, PoolLoad]]):
    """`hookline_pool_backlog`, `hookline_pool_backlog_age_seconds`, `hookline_pool_pollers`."""

    def families(self, value: Mapping[str, PoolLoad]) -> Iterable[GaugeMetricFamily]:
        backlog = GaugeMetricFamily(
            "hookline_pool_backlog", "Steps waiting in the pool's task queue (Temporal's estimate)", labels=["pool"]
        )
        age = GaugeMetricFamily(
            "hookline_pool_backlog_age_seconds", "How long the oldest waiting step has waited", labels=["pool"]
        )
        pollers = GaugeMetricFamily(
            "hookline_pool_pollers",
            f"Workers polling the pool's task queue (a poll within {POLL_FRESH_S:g}s)",
            labels=["pool"],
        )
        for pool, load in sorted(value.items()):
            backlog.add_metric([pool], load.backlog)
            age.add_metric([pool], load.backlog_age_s)
            pollers.add_metric([pool], load.pollers)
        return [backlog, age, pollers]


class RunCollector(Scraped[Mapping[tuple[str, str], int]]):
    """`hookline_runs{definition, status}`."""

    def families(self, value: Mapping[tuple[str, str], int]) -> Iterable[GaugeMetricFamily]:
        runs = GaugeMetricFamily(
            "hookline_runs",
            "Runs Temporal keeps (open, and closed within the retention period) by definition and status",
            labels=["definition", "status"],
        )
        for (definition, status), count in sorted(value.items()):
            runs.add_metric([definition, status], count)
        return [runs]


def watch_temporal(registry: CollectorRegistry, state: ApiState) -> None:
    """Register the pool and run collectors, reading through the API's Temporal client and its
    definitions (the pools of the agents and of the definitions' inline actions)."""
    temporal = state.settings.temporal

    async def loads() -> dict[str, PoolLoad]:
        definitions = [s.definition for s in state.definitions().all()]
        return await pool_loads(state.temporal(), temporal, pools_of(state.agents, definitions=definitions))

    async def runs() -> dict[tuple[str, str], int]:
        return await run_counts(state.temporal(), [s.id for s in state.definitions().all()])

    registry.register(PoolCollector(loads, timeout_s=2.0, ttl_s=5.0))
    registry.register(RunCollector(runs, timeout_s=5.0, ttl_s=30.0))

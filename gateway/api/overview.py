"""`GET /overview`: what needs attention first, then the numbers — events decided per second,
runs by status, dead letters, the triggers' consumer lag, runner pools with pollers, runs waiting
for an approval.

Each part is read on its own, side by side and bounded in time like every API call of its back
end; a part that cannot be read is null and `unavailable` says why, so an unreachable Temporal
still leaves the events, the DLQ and the lag on the console's overview. Team-scoped as the lists
it summarises are: a team token counts its team's events, runs and dead letters, an operator
every team's.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from gateway.api.approvals import pending_approvals_query
from gateway.api.auth import Principal
from gateway.api.dlq import read_dead_letters, visible_to
from gateway.api.event_index import EventFilter
from gateway.api.executions import FILTERABLE, visibility_query
from gateway.api.messages import json_response
from gateway.api.models import (
    AttentionItem,
    ConsumerLag,
    DlqSize,
    EventRate,
    ExecutionStatus,
    GroupLag,
    Overview,
    PartitionLag,
    PoolsPolled,
    RunCounts,
    RunnerPool,
    WaitingApprovals,
)
from gateway.api.routing import API_PREFIX
from gateway.api.state import API, ApiState
from gateway.errors import GatewayError
from hookline.kafka import create_consumer, start_client, topic_partitions
from hookline.logging import get_logger
from hookline.pools import describe_pools, pools_of
from hookline.runs import team_of
from hookline.settings import KafkaSettings
from hookline.temporal import query_literal

__all__ = ["consumer_lag", "overview"]

log = get_logger(__name__)

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
#: Temporal's ExecutionStatus in a visibility answer → the API's status.
_STATUS_OF = {name: status for status, name in FILTERABLE.items()} | {
    "ContinuedAsNew": ExecutionStatus.CONTINUED_AS_NEW
}


@dataclass(frozen=True, slots=True)
class _Parts:
    """What was read; None where a part could not be."""

    runs: RunCounts | None
    dlq: DlqSize | None
    runners: PoolsPolled | None
    approvals: WaitingApprovals | None


async def _events(state: ApiState, principal: Principal, now: datetime) -> EventRate:
    index = state.events()
    team = None if principal.operator else principal.team
    minute = await index.count(EventFilter(team=team, decided_since=now - _MINUTE))
    five = await index.count(EventFilter(team=team, decided_since=now - 5 * _MINUTE))
    return EventRate(per_second=round(minute / 60, 3), last_minute=minute, last_5_minutes=five)


async def _count_by_status(client: Client, query: str) -> dict[ExecutionStatus, int]:
    """Executions per status: one GROUP BY count, or one count per status on a server without."""
    counts = dict.fromkeys(ExecutionStatus, 0)
    try:
        answer = await client.count_workflows(f"{query} GROUP BY ExecutionStatus")
    except RPCError as exc:
        if exc.status not in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNIMPLEMENTED):
            raise
        log.debug("visibility counts no GROUP BY; counting per status", error=exc.message)
        for status, name in FILTERABLE.items():
            counts[status] = (
                await client.count_workflows(f"{query} AND ExecutionStatus = {query_literal(name)}")
            ).count
        return counts
    for group in answer.groups:
        name = str(group.group_values[0]) if group.group_values else ""
        counts[_STATUS_OF.get(name, ExecutionStatus.UNKNOWN)] += group.count
    return counts


async def _runs(state: ApiState, principal: Principal, now: datetime) -> RunCounts:
    client = state.temporal()
    query = visibility_query(principal, {})
    since = query_literal((now - _HOUR).isoformat())
    async with state.temporal_call():
        by_status = await _count_by_status(client, query)
        failed = await client.count_workflows(f"{query} AND ExecutionStatus = 'Failed' AND CloseTime >= {since}")
    return RunCounts(by_status=by_status, failed_last_hour=failed.count)


async def _dlq(state: ApiState, principal: Principal, now: datetime) -> DlqSize:
    visible = [letter for letter in await read_dead_letters(state) if visible_to(principal, letter)]
    recent = sum(1 for letter in visible if letter.last_seen >= now - _HOUR)
    return DlqSize(size=len(visible), last_hour=recent)


async def _runners(state: ApiState, principal: Principal, now: datetime) -> PoolsPolled:
    """The pools GET /runners lists for the caller, and how many have pollers."""
    visible = (s.definition for s in state.definitions().all() if principal.sees(team_of(s)))
    pools = pools_of(state.agents, definitions=visible)
    async with state.temporal_call():
        statuses = await describe_pools(state.temporal(), state.settings.temporal, pools, now=now)
    items = [RunnerPool.model_validate(dict(s)) for s in statuses]
    return PoolsPolled(pools=items, with_pollers=sum(1 for p in items if p.polling), total=len(items))


async def _approvals(state: ApiState, principal: Principal, now: datetime) -> WaitingApprovals:
    """The runs waiting for the caller's team to decide an approval (GET /approvals lists them)."""
    async with state.temporal_call():
        waiting = await state.temporal().count_workflows(pending_approvals_query(principal, None))
    return WaitingApprovals(runs=waiting.count)


async def consumer_lag(kafka: KafkaSettings, *, every_topic: bool) -> ConsumerLag:
    """The lag of each consumer group that has committed offsets on the events topic (the
    triggers', whatever `triggers.group_id` names it; the API's own readers commit nothing): per
    partition, its end minus the group's committed offset (its beginning where none is). On the
    events topic only, or with `every_topic` on every topic the group has committed on (a
    `kafka` trigger's too)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
    )
    consumer = create_consumer(kafka, group_id=None)
    try:
        await start_client(admin)
        await start_client(consumer)
        groups = [str(g[0]) for g in await admin.list_consumer_groups() if g[1] in ("consumer", "")]
        committed = await asyncio.gather(*(admin.list_consumer_group_offsets(g) for g in groups))
        events = await topic_partitions(consumer, kafka.events_topic)
        readers = {
            group: {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            for group, offsets in zip(groups, committed, strict=True)
            if any(tp.topic == kafka.events_topic for tp in offsets)
        }
        wanted = {
            group: sorted({*events, *(tp for tp in offsets if every_topic)}) for group, offsets in readers.items()
        }
        partitions = sorted({tp for tps in wanted.values() for tp in tps})
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions) if partitions else {}
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
        await admin.close()
    answer = [_group_lag(group, tps, readers[group], ends, starts) for group, tps in sorted(wanted.items())]
    return ConsumerLag(lag=max((g.lag for g in answer), default=0), groups=answer)


def _group_lag(
    group: str,
    partitions: Sequence[TopicPartition],
    committed: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    starts: dict[TopicPartition, int],
) -> GroupLag:
    rows = [
        PartitionLag(
            topic=tp.topic,
            partition=tp.partition,
            end_offset=ends[tp],
            committed_offset=committed.get(tp),
            lag=max(ends[tp] - committed.get(tp, starts[tp]), 0),
        )
        for tp in partitions
    ]
    return GroupLag(group=group, lag=sum(r.lag for r in rows), partitions=rows)


async def _lag(state: ApiState, principal: Principal, now: datetime) -> ConsumerLag:
    # A team sees the lag on the events topic, which all teams share; which external topics other
    # teams' triggers read is theirs.
    return await state.kafka_call(
        consumer_lag(state.settings.kafka, every_topic=principal.operator),
        "Kafka did not tell the consumer lag in time",
    )


def _counted(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _failed_runs(parts: _Parts, now: datetime) -> list[AttentionItem]:
    if parts.runs is None or not (n := parts.runs.failed_last_hour):
        return []
    link = f"{API_PREFIX}/executions?" + urllib.parse.urlencode(
        {"status": "failed", "since": (now - _HOUR).isoformat()}
    )
    return [
        AttentionItem(
            kind="failed_runs", message=f"{_counted(n, 'run')} failed in the last hour", count=n, links={"self": link}
        )
    ]


def _waiting_approvals(parts: _Parts, now: datetime) -> list[AttentionItem]:
    if parts.approvals is None or not (n := parts.approvals.runs):
        return []
    message = f"{_counted(n, 'run')} {'waits' if n == 1 else 'wait'} for an approval"
    return [
        AttentionItem(kind="waiting_approvals", message=message, count=n, links={"self": f"{API_PREFIX}/approvals"})
    ]


def _idle_pools(parts: _Parts, now: datetime) -> list[AttentionItem]:
    pools = parts.runners.pools if parts.runners is not None else []
    return [
        AttentionItem(
            kind="pool_without_pollers",
            message=f"runner pool {p.pool} has no pollers: its steps wait",
            count=1,
            links={"self": f"{API_PREFIX}/runners"},
        )
        for p in pools
        if not p.polling
    ]


def _dlq_growth(parts: _Parts, now: datetime) -> list[AttentionItem]:
    if parts.dlq is None or not (n := parts.dlq.last_hour):
        return []
    message = f"{_counted(n, 'dead letter')} in the last hour ({parts.dlq.size} in all)"
    return [AttentionItem(kind="dlq_growth", message=message, count=n, links={"self": f"{API_PREFIX}/dlq"})]


#: What needs attention, most urgent first: each check turns the parts read into items. A new
#: kind is a part read beside the others in `overview` and a check here.
ATTENTION: tuple[Callable[[_Parts, datetime], list[AttentionItem]], ...] = (
    _failed_runs,
    _waiting_approvals,
    _idle_pools,
    _dlq_growth,
)


async def overview(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    now = datetime.now(UTC)
    readers: dict[str, Callable[[ApiState, Principal, datetime], Awaitable[Any]]] = {
        "events": _events,
        "runs": _runs,
        "dlq": _dlq,
        "consumer_lag": _lag,
        "runners": _runners,
        "approvals": _approvals,
    }
    results = await asyncio.gather(*(read(state, principal, now) for read in readers.values()), return_exceptions=True)
    parts: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for name, result in zip(readers, results, strict=True):
        parts[name] = None
        if isinstance(result, GatewayError):
            unavailable[name] = result.detail
        elif isinstance(result, Exception):  # one broken part must not blank the overview: logged, said
            log.error("overview part failed", part=name, error=repr(result), exc_info=result)
            unavailable[name] = f"could not be read ({type(result).__name__}); see the gateway's log"
        elif isinstance(result, BaseException):
            raise result
        else:
            parts[name] = result
    read = _Parts(runs=parts["runs"], dlq=parts["dlq"], runners=parts["runners"], approvals=parts["approvals"])
    attention = [item for check in ATTENTION for item in check(read, now)]
    answer = Overview(at=now, team=principal.team, attention=attention, unavailable=unavailable, **parts)
    return json_response(answer)

"""`GET /workflows/{id}/lanes`: the flow-control lanes of a definition (docs/flow-control.md):
per key, what runs, what waits for its turn and in which order, what was skipped or dropped.
And the same lanes as gauges per definition (`watch_lanes`): what runs, waits, is held by a
throttle or is being collected now.

Each running lane is asked with its `lane` query, a few at a time and bounded in time; a lane
that does not answer (no worker polls) is listed with a note instead of its lists, and is left
out of the gauges.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from gateway.api.auth import Principal
from gateway.api.messages import json_response
from gateway.api.models import Lane, LaneList
from gateway.api.state import API, ApiState
from gateway.api.workflows import known_definition
from hookline.metrics import Scraped
from hookline.temporal import SA_DEFINITION, query_literal
from schemas.run import LANE_QUERY, LANE_WORKFLOW, LaneState

__all__ = ["LaneGauges", "lane_gauges", "list_lanes", "watch_lanes"]

#: Lanes asked at once.
_AT_ONCE = 8
#: Most lanes the gauges ask at one scrape (all definitions together).
_GAUGED = 1000
#: What an event in a lane is doing now, as the gauges count it.
STATES = ("running", "queued", "throttled", "collecting")


async def _ask(state: ApiState, lane_id: str, gate: asyncio.Semaphore) -> LaneState | Exception:
    """The lane's state, or why it did not answer."""
    handle = state.temporal().get_workflow_handle(lane_id)
    async with gate:
        try:
            answer: LaneState = await handle.query(
                LANE_QUERY, result_type=LaneState, rpc_timeout=timedelta(seconds=state.options.query_timeout_s)
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, TimeoutError) as exc:
            return exc
    return answer


def _lane(answer: LaneState | Exception) -> Lane:
    if isinstance(answer, Exception):
        note = f"the lane did not answer ({type(answer).__name__}); is a worker polling?"
        return Lane(
            key="?",
            limit=None,
            mode="?",
            throttle=None,
            running=[],
            queued=[],
            skipped=[],
            dropped=[],
            replaced=[],
            cancelled=[],
            collecting=[],
            note=note,
        )
    config = answer.config
    throttle = None
    if config is not None and config.throttle_limit is not None:
        until = answer.throttled_until
        throttle = {
            "limit": config.throttle_limit,
            "period_s": config.throttle_period_s,
            "burst": config.throttle_burst,
            # Why what waits has not started yet: the throttle holds the next start until then.
            "until": until.isoformat() if until is not None else None,
        }
    return Lane(
        key=config.key if config else "",
        limit=config.limit if config else None,
        mode=config.mode if config else "queue",
        throttle=throttle,
        running=answer.running,
        queued=answer.queued,
        skipped=answer.skipped,
        dropped=answer.dropped,
        replaced=answer.replaced,
        cancelled=answer.cancelled,
        collecting=answer.collected,
        note=None,
    )


async def list_lanes(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    definition_id = known_definition(state, principal, request.match_info["workflow_id"]).id
    query = (
        f"WorkflowType = {query_literal(LANE_WORKFLOW)} AND {SA_DEFINITION.name} = {query_literal(definition_id)} "
        "AND ExecutionStatus = 'Running'"
    )
    gate = asyncio.Semaphore(_AT_ONCE)
    async with state.temporal_call():
        ids = [w.id async for w in state.temporal().list_workflows(query, limit=state.options.max_page_size)]
        answers = await asyncio.gather(*(_ask(state, i, gate) for i in ids))
    return json_response(LaneList(items=sorted(map(_lane, answers), key=lambda lane: lane.key)))


def _held(answer: LaneState) -> Counter[str]:
    """Its events by what they do now: waiting ones are `throttled` while the throttle, not the
    concurrency limit, holds the next start."""
    limit = answer.config.limit if answer.config else None
    slot_free = limit is None or len(answer.running) < limit
    waiting = "throttled" if answer.throttled_until is not None and slot_free else "queued"
    return Counter({"running": len(answer.running), waiting: len(answer.queued), "collecting": len(answer.collected)})


async def lane_gauges(state: ApiState) -> dict[str, tuple[int, Counter[str]]]:
    """definition → (its running lanes, their events by state), for the definitions the API
    knows; lanes that do not answer count as lanes, not their events."""
    known = {stored.id for stored in state.definitions().all()}
    query = f"WorkflowType = {query_literal(LANE_WORKFLOW)} AND ExecutionStatus = 'Running'"
    lanes: list[tuple[str, str]] = []
    async for found in state.temporal().list_workflows(query, limit=_GAUGED):
        definition = found.typed_search_attributes.get(SA_DEFINITION)
        if definition in known:
            lanes.append((definition, found.id))
    gate = asyncio.Semaphore(_AT_ONCE)
    answers = await asyncio.gather(*(_ask(state, lane_id, gate) for _, lane_id in lanes))
    gauges: dict[str, tuple[int, Counter[str]]] = {}
    for (definition, _), answer in zip(lanes, answers, strict=True):
        count, events = gauges.get(definition, (0, Counter[str]()))
        gauges[definition] = (count + 1, events + _held(answer) if isinstance(answer, LaneState) else events)
    return gauges


class LaneGauges(Scraped[Mapping[str, tuple[int, Counter[str]]]]):
    """`hookline_lanes{definition}` and `hookline_lane_events{definition, state}`."""

    def families(self, value: Mapping[str, tuple[int, Counter[str]]]) -> Iterable[GaugeMetricFamily]:
        lanes = GaugeMetricFamily(
            "hookline_lanes", "Flow-control lanes running now (one per definition and key)", labels=["definition"]
        )
        events = GaugeMetricFamily(
            "hookline_lane_events",
            "Events in the lanes now, by state: running (its run runs), queued (waits for a slot or its turn), "
            "throttled (waits while the throttle holds the next start), collecting (for a debounced or batched run)",
            labels=["definition", "state"],
        )
        for definition, (count, held) in sorted(value.items()):
            lanes.add_metric([definition], count)
            for name in STATES:
                events.add_metric([definition, name], held[name])
        return [lanes, events]


def watch_lanes(registry: CollectorRegistry, state: ApiState) -> None:
    """Register the lane gauges, read through the API's Temporal client at most every 15 s."""
    registry.register(LaneGauges(lambda: lane_gauges(state), timeout_s=10.0, ttl_s=15.0))

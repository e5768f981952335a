"""Starting workflows exactly once: the workflow id is derived from definition + the event's
source and dedupe key (`hookline.runs.workflow_id_for`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from hookline.definitions import StoredDefinition
from hookline.matching import trigger_input
from hookline.retry import Backoff, retry
from hookline.runs import (
    NotStartable,
    build_request,
    lane_id,
    run_search_attributes,
    start_run,
    workflow_id_for,
)
from hookline.settings import TemporalSettings
from hookline.slots import WorkflowTaskSlots
from hookline.temporal import SA_DEFINITION, SA_TEAM
from schemas.agents import AgentCatalog
from schemas.decisions import Outcome
from schemas.events import Event
from schemas.expressions import ExpressionError, render
from schemas.filters import event_context
from schemas.run import (
    LANE_EVENT,
    LANE_RESOLVE,
    LANE_WORKFLOW,
    RESOLVED_SIGNAL,
    LaneConfig,
    LaneItem,
    LaneResolve,
    LaneState,
    Resolved,
    RunRequest,
    RunState,
)
from schemas.workflow import Trigger
from triggers.errors import Unprocessable

__all__ = ["WorkflowStarter", "workflow_id_for"]

T = TypeVar("T")
# A cancel that finds the run over.
_ENDED = {RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION}
# Status codes that mean "Temporal cannot take it now": retry, never DLQ.
_TRANSIENT = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.CANCELLED,
}


class WorkflowStarter:
    def __init__(
        self,
        client: Client,
        settings: TemporalSettings,
        agents: AgentCatalog,
        *,
        retry_max_s: float,
        stopping: asyncio.Event,
        on_retry: Callable[[], None] = lambda: None,
        eager: bool = False,
        on_eager: Callable[[], None] = lambda: None,
        slots: WorkflowTaskSlots | None = None,
        slot_wait_s: float = 0.0,
    ) -> None:
        """`eager`: this process runs the interpreter on `client` (`triggers.interpreter`), so a
        new run's first workflow task may come back with its start (`on_eager` is told when it
        did). `slots`, that interpreter's workflow task slots: a start waits up to `slot_wait_s`
        for one to be free (hookline.slots)."""
        self._client = client
        self._eager = eager
        self._on_eager = on_eager
        self._slots = slots if eager else None
        self._slot_wait_s = slot_wait_s
        self._settings = settings
        self._agents = agents
        self._retry_max_s = retry_max_s
        self._stopping = stopping
        self._on_retry = on_retry

    async def start(self, event: Event, stored: StoredDefinition, trigger: Trigger) -> tuple[str, bool]:
        """Start (or find) the run for this event; returns (workflow id, newly started).

        Retries while Temporal is unreachable; raises `Unprocessable` for permanent faults and
        `asyncio.CancelledError` if the service is stopping (the record stays uncommitted).
        """
        workflow_id = workflow_id_for(stored.id, event)
        try:
            run_input = trigger_input(trigger, event)
            request = build_request(stored, self._agents, self._settings, input=run_input, event=event)
        except (NotStartable, ExpressionError) as exc:
            raise Unprocessable(f"definition {stored.id} v{stored.version}: {exc}") from exc
        return await self._start(request, workflow_id)

    async def enqueue(self, event: Event, stored: StoredDefinition, trigger: Trigger) -> tuple[str, Outcome]:
        """Send the event to its lane (the trigger has flow control): the lane starts its run,
        under the id a direct start would use, when its limit allows; returns (that run's id,
        "queued")."""
        run_id = workflow_id_for(stored.id, event)
        context = event_context(event.model_dump(mode="json"))
        try:
            request = build_request(
                stored, self._agents, self._settings, input=trigger_input(trigger, event), event=event
            )
            key = _text(render(trigger.lane_key, context)) if trigger.lane_key is not None else ""
            priority = float(render(trigger.priority, context)) if trigger.priority is not None else 0.0
        except (NotStartable, ExpressionError, TypeError, ValueError) as exc:
            raise Unprocessable(f"definition {stored.id} v{stored.version}: {exc}") from exc
        concurrency, throttle = trigger.concurrency, trigger.throttle
        config = LaneConfig(
            definition_id=stored.id,
            key=key,
            limit=concurrency.limit if concurrency else None,
            mode=concurrency.mode if concurrency else "queue",
            throttle_limit=throttle.limit if throttle else None,
            throttle_period_s=throttle.period if throttle else None,
            throttle_burst=throttle.burst if throttle else 0,
            **_collecting(trigger),
        )
        attributes = {pair.key.name: pair.value for pair in run_search_attributes(request, run_id)}
        timeout = self._settings.task_timeout([*request.routes.values(), *request.compensations.values()])
        item = LaneItem(
            run_id=run_id,
            request=request,
            priority=priority,
            config=config,
            attributes=attributes,
            task_timeout_s=timeout.total_seconds() if timeout is not None else None,
        )
        lane = lane_id(stored.id, key)
        await self._signal_lane(lane, stored, LANE_EVENT, item)
        return run_id, "queued"

    async def _signal_lane(
        self, lane: str, stored: StoredDefinition, signal: str, argument: LaneItem | LaneResolve
    ) -> None:
        """Signal-with-start the lane: a lane that ended (idle) starts again with the signal. Its
        definition and team are search attributes, so the API lists a definition's lanes."""
        attributes = TypedSearchAttributes(
            [SearchAttributePair(SA_DEFINITION, stored.id), SearchAttributePair(SA_TEAM, stored.definition.team)]
        )
        await self._retrying(
            lane,
            lambda: self._client.start_workflow(
                LANE_WORKFLOW,
                LaneState(),
                id=lane,
                task_queue=self._settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=attributes,
                start_signal=signal,
                start_signal_args=[argument],
            ),
        )

    async def resolve(self, event: Event, stored: StoredDefinition, trigger: Trigger) -> tuple[str, Outcome]:
        """Deliver an event that resolves an earlier one (`event.resolves`) as the trigger's
        `on_resolved` says; returns (workflow id, outcome).

        `signal`/`cancel` go to the run the earlier event started, as a signal-with-start: if
        that run does not exist yet (the resolution overtook the firing), it is created with the
        signal already in it, and the firing event later finds it there and starts nothing.
        """
        policy = trigger.on_resolved
        if policy == "ignore" or not event.resolves:
            return "", "ignored"
        if policy == "start" and trigger.flow_controlled:
            return await self.enqueue(event, stored, trigger)
        if policy == "start":
            workflow_id, started = await self.start(event, stored, trigger)
            return workflow_id, "started" if started else "existing"
        workflow_id = workflow_id_for(stored.id, event, event.resolves)  # same source only
        if trigger.flow_controlled:  # the run is the lane's: it may still wait there
            resolved = Resolved(event=event, action="cancel" if policy == "cancel" else "signal")
            key_of = trigger.lane_key
            try:
                context = event_context(event.model_dump(mode="json"))
                key = _text(render(key_of, context)) if key_of is not None else ""
            except ExpressionError as exc:
                raise Unprocessable(f"definition {stored.id} v{stored.version}: {exc}") from exc
            resolution = LaneResolve(run_id=workflow_id, resolved=resolved)
            await self._signal_lane(lane_id(stored.id, key), stored, LANE_RESOLVE, resolution)
            return workflow_id, "signalled"
        try:
            request = build_request(
                stored, self._agents, self._settings, input=trigger_input(trigger, event), event=event
            )
        except (NotStartable, ExpressionError) as exc:
            raise Unprocessable(f"definition {stored.id} v{stored.version}: {exc}") from exc
        signal = Resolved(event=event, action="cancel" if policy == "cancel" else "signal")
        workflow_id, running = await self._start(request, workflow_id, signal=(RESOLVED_SIGNAL, signal))
        if not running:
            return workflow_id, "already ended"
        if policy == "cancel":
            return workflow_id, "cancelled" if await self._cancel(workflow_id) else "already ended"
        return workflow_id, "signalled"

    async def _start(
        self, request: RunRequest, workflow_id: str, *, signal: tuple[str, Resolved] | None = None
    ) -> tuple[str, bool]:
        """(workflow id, True) once started or signalled; (id, False) if the id ran and ended."""

        async def attempt() -> tuple[WorkflowHandle[Any, RunState], bool]:
            if self._slots is None or signal is not None:  # (a signal-with-start is never eager)
                return await start_run(
                    self._client, self._settings, request, workflow_id, signal=signal, eager=self._eager
                )
            # Eager if a slot of this process's interpreter comes free in time (hookline.slots).
            async with self._slots.free_slot(self._slot_wait_s) as eager:
                return await start_run(self._client, self._settings, request, workflow_id, eager=eager)

        try:
            handle, started = await self._retrying(workflow_id, attempt)
        except WorkflowAlreadyStartedError:
            return workflow_id, False  # the run for this occurrence existed and ended: done
        # The SDK marks a handle whose first workflow task came back with the start (private).
        if self._eager and getattr(handle, "__temporal_eagerly_started", False):
            self._on_eager()
        return workflow_id, started or signal is not None

    async def _cancel(self, workflow_id: str) -> bool:
        """Request cancellation; False if the run has ended meanwhile."""
        try:
            await self._retrying(workflow_id, lambda: self._client.get_workflow_handle(workflow_id).cancel())
        except Unprocessable as exc:
            if isinstance(exc.__cause__, RPCError) and exc.__cause__.status in _ENDED:
                return False
            raise
        return True

    async def _retrying(self, workflow_id: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, retried with backoff while Temporal is unreachable; other RPC errors are
        `Unprocessable`, and stopping leaves the record uncommitted (`Stopped`, a `CancelledError`)."""
        try:
            return await retry(
                call,
                backoff=Backoff(first_s=0.1, max_s=self._retry_max_s),
                retry_on=_unreachable,
                message="temporal unavailable, retrying",
                stopping=self._stopping,
                on_retry=self._on_retry,
                workflow_id=workflow_id,
            )
        except RPCError as exc:
            raise Unprocessable(f"Temporal rejected the request for {workflow_id}: {exc.message}") from exc


def _unreachable(exc: Exception) -> bool:
    return isinstance(exc, RPCError) and exc.status in _TRANSIENT


def _text(value: object) -> str:
    """A rendered key as text: a string as it is, anything else as its JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _collecting(trigger: Trigger) -> dict[str, Any]:
    """The lane's collection settings: debounce or batch (none: each event is its own run)."""
    if trigger.debounce is not None:
        return {"collect": "debounce", "quiet_s": trigger.debounce.period, "max_wait_s": trigger.debounce.max_wait}
    if trigger.batch is not None:
        return {"collect": "batch", "max_events": trigger.batch.max_events, "max_wait_s": trigger.batch.max_wait}
    return {}

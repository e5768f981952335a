"""A run's Temporal history as step-level events, and the step states it implies (what the
API shows when no worker answers the `state` query).

An approval's decision is a workflow Update (docs/waiting-steps.md): Temporal records it as
accepted, with the decision as its argument, then completed. Both are rows here, named for the
approval step, with who decided, the decision and the comment. A refused decision leaves nothing
in the history, so nothing here either."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from schemas.run import APPROVAL_UPDATE, DecisionRequest, RunRequest, RunState, StepRequest, StepState

__all__ = ["RunHistory", "read_history"]

E = EventType
_RUN_EVENTS = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "execution_started",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "execution_signaled",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: "execution_cancel_requested",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "execution_completed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "execution_failed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "execution_cancelled",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "execution_timed_out",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "execution_terminated",
}
_STEP_EVENTS = {
    E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "step_scheduled",
    E.EVENT_TYPE_ACTIVITY_TASK_STARTED: "step_started",
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "step_completed",
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "step_failed",
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "step_timed_out",
    E.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED: "step_cancel_requested",
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "step_cancelled",
}
_UPDATE_EVENTS = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "approval_accepted",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: "approval_completed",
}


@dataclass
class RunHistory:
    request: RunRequest | None = None
    result: RunState | None = None  # what a completed run returned
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def step_states(self) -> dict[str, StepState]:
        """Each step's state as far as its history events tell (no outputs: those are in the
        activity results, which the history does not show here)."""
        if self.result is not None:
            return dict(self.result.steps)
        names = [s.name for s in self.request.definition.all_steps()] if self.request else []
        steps = {name: StepState() for name in names}
        for event in self.events:
            name = event.get("step")
            if name is None:
                continue
            state = steps.setdefault(name, StepState())
            _apply(state, event)
        return steps


def _apply(state: StepState, event: dict[str, Any]) -> None:
    kind, time = event["type"], event["time"]
    if event.get("compensation"):
        if kind == "step_completed":
            state.status, state.compensation = "compensated", "succeeded"
        elif kind in ("step_failed", "step_timed_out"):
            state.compensation, state.compensation_error = "failed", event.get("error")
        return
    if kind == "step_scheduled":
        state.status, state.started_at = "running", time
    elif kind == "step_started":
        state.attempts = event.get("attempt") or state.attempts
    elif kind == "step_completed":
        state.status, state.finished_at = "succeeded", time
    elif kind in ("step_failed", "step_timed_out"):
        state.status, state.finished_at, state.error = "failed", time, event.get("error")
    elif kind == "step_cancelled":
        state.status, state.finished_at = "cancelled", time


async def _decode(client: Client, payloads: Payloads, kind: type[Any]) -> Any:
    if not payloads.payloads:
        return None
    try:
        [value] = await client.data_converter.decode(payloads.payloads, [kind])
    except Exception:  # written by another version of Hookline: show the event without it
        return None
    return value


async def read_history(client: Client, handle: WorkflowHandle[Any, Any]) -> RunHistory:
    """The run's events in order; the activity inputs are decoded to name each step."""
    reader = _Reader(client)
    async for event in handle.fetch_history_events():
        await reader.read(event)
    return reader.history


class _Reader:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.history = RunHistory()
        self.steps: dict[int, tuple[str | None, bool]] = {}  # scheduled event id → (step, compensation)
        self.attempts: dict[int, int] = {}
        #: accepted event id → what its approval update carried (step, decision, by, comment)
        self.decisions: dict[int, dict[str, Any]] = {}

    async def read(self, event: HistoryEvent) -> None:
        out: dict[str, Any] = {"id": event.event_id, "time": event.event_time.ToDatetime(tzinfo=UTC)}
        if event.event_type in _RUN_EVENTS:
            await self._run_event(event, out)
        elif event.event_type in _STEP_EVENTS:
            await self._step_event(event, out)
        elif event.event_type in _UPDATE_EVENTS:
            await self._update_event(event, out)

    async def _run_event(self, event: HistoryEvent, out: dict[str, Any]) -> None:
        t, history = event.event_type, self.history
        out["type"] = _RUN_EVENTS[t]
        if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            history.request = await _decode(self.client, attrs.input, RunRequest)
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = event.workflow_execution_completed_event_attributes.result
            history.result = await _decode(self.client, result, RunState)
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            history.error = out["error"] = event.workflow_execution_failed_event_attributes.failure.message
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            history.error = out["error"] = event.workflow_execution_terminated_event_attributes.reason or "terminated"
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            out["signal"] = event.workflow_execution_signaled_event_attributes.signal_name
        history.events.append(out)

    async def _step_event(self, event: HistoryEvent, out: dict[str, Any]) -> None:
        t = event.event_type
        out["type"] = _STEP_EVENTS[t]
        attrs: Any = getattr(event, event.WhichOneof("attributes") or "")
        if t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            request = await _decode(self.client, attrs.input, StepRequest)
            self.steps[event.event_id] = (request.step, request.compensation) if request else (None, False)
            scheduled = event.event_id
        else:
            scheduled = attrs.scheduled_event_id
        if t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            self.attempts[scheduled] = attrs.attempt
        elif t in (E.EVENT_TYPE_ACTIVITY_TASK_FAILED, E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            out["error"] = attrs.failure.message or "timed out"
        step, compensation = self.steps.get(scheduled, (None, False))
        out.update(step=step, compensation=compensation, attempt=self.attempts.get(scheduled))
        self.history.events.append(out)

    async def _update_event(self, event: HistoryEvent, out: dict[str, Any]) -> None:
        """An approval's decision: accepted (its argument says who decided what), then completed."""
        if event.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
            if update.name != APPROVAL_UPDATE:
                return  # no other update exists; one of a later version is not this reader's to name
            request = await _decode(self.client, update.args, DecisionRequest)
            decision: dict[str, Any] = {"step": None}
            if request is not None:
                decision = {"step": request.step, "decision": request.decision, "by": request.by}
                if request.comment is not None:
                    decision["comment"] = request.comment
            self.decisions[event.event_id] = decision
        else:
            completed = event.workflow_execution_update_completed_event_attributes
            found = self.decisions.get(completed.accepted_event_id)
            if found is None:
                return
            decision = found
            if completed.outcome.HasField("failure"):
                out["error"] = completed.outcome.failure.message
        out["type"] = _UPDATE_EVENTS[event.event_type]
        out.update(decision)
        self.history.events.append(out)

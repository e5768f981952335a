"""The interpreter: one workflow runs any definition. Deterministic: no I/O, no clocks but
Temporal's, no randomness.

Every step is a task in one task group; a step first waits for the steps it depends on (the
ordering rule of `schemas.workflow`). A step that fails, once its retries are spent, fails the
group: the siblings are cancelled (their activities with them), the completed steps that have an
`on_failure` action are compensated in reverse order of completion, and the run ends failed.
Cancelling the run, or reaching the definition's `timeout`, does the same.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from schemas.expressions import ExpressionError, evaluate, render, truthy
    from schemas.run import (
        APPROVAL_UPDATE,
        LANE_PING,
        LANE_RUN_ENDED,
        RESOLVED_SIGNAL,
        RUN_STEP,
        STATE_QUERY,
        WAIT_EVENT_SIGNAL,
        WORKFLOW_NAME,
        ApprovalState,
        DecisionRequest,
        Resolved,
        Route,
        RunRequest,
        RunState,
        StepRequest,
        StepResult,
        StepState,
        WaitMatch,
    )
    from schemas.workflow import Retries, Step
    from worker.waiting import Outcome, Waiting

__all__ = ["HooklineRun"]

HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# The runner enforces the step timeout itself and reports it; Temporal's limit is the backstop.
TIMEOUT_GRACE_S = 10.0
DEFAULT_ATTEMPTS = 3
OUTPUT_SUMMARY_CHARS = 1000
#: Runs that began after this tell the lane that started them when they end, if the lane asked
#: (it continued as new while they ran; worker/lane.py).
_TELLS_ITS_LANE = "run-tells-its-lane"


class _StepFailure(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"step {step!r} failed: {reason}")


def _retry_policy(retries: Retries | None) -> RetryPolicy:
    r = retries or Retries()
    return RetryPolicy(
        initial_interval=timedelta(seconds=r.initial_interval or 1.0),
        backoff_coefficient=r.backoff_coefficient or 2.0,
        maximum_interval=timedelta(seconds=r.max_interval) if r.max_interval else None,
        maximum_attempts=r.max_attempts or DEFAULT_ATTEMPTS,
        non_retryable_error_types=list(r.non_retryable_errors) or None,
    )


def _cause(error: FailureError) -> BaseException | None:
    """Why a step's activity failed. A queued activity fails with an `ActivityError` around the
    cause; a local one with the cause itself (an ApplicationError, CancelledError, TimeoutError)."""
    return error.cause if isinstance(error, ActivityError) else error


def _reason(error: FailureError) -> tuple[str, int | None]:
    """What went wrong in words, and the attempt it happened on when the runner said."""
    cause = _cause(error)
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        attempt = details.get("attempt") if isinstance(details, dict) else None
        return cause.message, attempt if isinstance(attempt, int) else None
    return (cause.message if isinstance(cause, FailureError) else str(cause or error)), None


class _Run:
    """One run's walk over its definition; holds the state the `state` query answers."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.definition = request.definition
        self.steps = {s.name: s for s in self.definition.all_steps()}
        self.deps = self.definition.dependencies()
        self.done: dict[str, asyncio.Future[None]] = {
            name: asyncio.get_running_loop().create_future() for name in self.steps
        }
        self.outputs: dict[str, Any] = {}
        self.completed: list[str] = []  # in completion order: compensation walks it backwards
        self.state = RunState(
            definition_id=request.definition_id,
            definition_version=request.definition_version,
            started_at=workflow.now(),
            event_id=request.event.id if request.event else None,
            steps={name: StepState() for name in self.steps},
        )
        self._event = request.event.model_dump(mode="json") if request.event else None
        self._events = [event.model_dump(mode="json") for event in request.events]
        self.resolved: Resolved | None = None
        self._resolved_event: dict[str, Any] | None = None
        self.waiting = Waiting(request, self.state.steps, lambda: self.resolved is not None)
        #: Steps skipped because a step they wait for was rejected (an approval): the steps
        #: waiting for these, unless they have a `when`, are skipped too.
        self.blocked: set[str] = set()

    def resolve(self, signal: Resolved) -> None:
        self.resolved = signal
        self.state.resolved_by = signal.event.id
        self._resolved_event = signal.event.model_dump(mode="json")

    def context(self) -> dict[str, Any]:
        """What expressions see (documented in `schemas.expressions`)."""
        info = workflow.info()
        return {
            "input": self.request.input,
            "event": self._event,
            "events": self._events,
            "resolved": self._resolved_event,
            "approvals": self.waiting.links(),
            "steps": {n: {"status": s.status, "output": self.outputs.get(n)} for n, s in self.state.steps.items()},
            "workflow": {
                "id": info.workflow_id,
                "definition_id": self.request.definition_id,
                "definition_version": self.request.definition_version,
            },
        }

    async def execute(self) -> RunState:
        failure: str | None = None
        cancelled = False
        try:
            if self.resolved is not None and self.resolved.action == "cancel":
                # Resolved before it began: the cancellation the triggers send next ends it
                # before any step runs.
                await workflow.wait_condition(lambda: False)
            async with asyncio.timeout(self.definition.timeout), asyncio.TaskGroup() as group:
                for step in self.steps.values():
                    group.create_task(self.run_step(step))
        except TimeoutError:
            failure = f"the run timed out after {self.definition.timeout:g}s"
        except BaseExceptionGroup as errors:
            failure = str(errors.exceptions[0])
        except asyncio.CancelledError:
            cancelled = True
        if failure is None and not cancelled:
            self.state.status = "succeeded"
            self.state.finished_at = workflow.now()
            return self.state
        for step_state in self.state.steps.values():
            if step_state.status == "pending":
                step_state.status = "skipped"
        await self.compensate()
        self.state.finished_at = workflow.now()
        self.state.status = "cancelled" if cancelled else "failed"
        self.state.error = "cancelled" if cancelled else failure
        if cancelled:
            raise asyncio.CancelledError()
        raise ApplicationError(failure or "failed", type="RunFailed", non_retryable=True)

    async def run_step(self, step: Step) -> None:
        for name in self.deps[step.name]:
            await self.done[name]
        state = self.state.steps[step.name]
        if step.when is None and any(name in self.blocked for name in self.deps[step.name]):
            state.status = "skipped"
            self.blocked.add(step.name)
            self.done[step.name].set_result(None)
            return
        try:
            context = self.context()
            if step.when is not None and not truthy(evaluate(step.when, context)):
                state.status = "skipped"
                self.done[step.name].set_result(None)
                return
            step_input = render(step.with_, context) if step.with_ is not None else self.request.input
        except ExpressionError as exc:
            self._finish_failed(step, state, str(exc), None)
            return
        if step.waits is not None:
            await self._wait(step, state, context)
            return
        state.status = "running"
        state.started_at = workflow.now()
        try:
            result = await self._activity(step.name, self.request.routes[step.name], step_input, step.retries)
        except FailureError as exc:
            if isinstance(_cause(exc), CancelledError):  # the run (or a failing sibling) cancelled it
                state.status = "cancelled"
                state.finished_at = workflow.now()
                raise asyncio.CancelledError() from exc
            reason, attempt = _reason(exc)
            self._finish_failed(step, state, reason, attempt)
            return
        except asyncio.CancelledError:
            state.status = "cancelled"
            state.finished_at = workflow.now()
            raise
        state.status = "succeeded"
        state.started_at = result.started_at or state.started_at
        state.finished_at = result.finished_at or workflow.now()
        state.attempts = result.attempt
        state.output = result.output[-OUTPUT_SUMMARY_CHARS:]
        self.outputs[step.name] = result.data if result.data is not None else result.output
        self.completed.append(step.name)
        self.done[step.name].set_result(None)

    async def _wait(self, step: Step, state: StepState, context: dict[str, Any]) -> None:
        """An approval, wait_for or sleep step (`worker.waiting`)."""
        try:
            outcome: Outcome = await self.waiting.run(step, context)
        except asyncio.CancelledError:
            state.status = "cancelled"
            state.finished_at = workflow.now()
            raise
        self.outputs[step.name] = outcome.output
        state.output = outcome.summary
        if outcome.status == "failed":
            self._finish_failed(step, state, outcome.error or "failed", None)
            return
        state.status = outcome.status
        state.finished_at = workflow.now()
        if outcome.status == "rejected":
            self.blocked.add(step.name)
        self.done[step.name].set_result(None)

    def _finish_failed(self, step: Step, state: StepState, reason: str, attempt: int | None) -> None:
        state.status = "failed"
        state.error = reason
        state.finished_at = workflow.now()
        if attempt is not None:
            state.attempts = attempt
        if not step.continue_on_error:
            raise _StepFailure(step.name, reason)
        self.done[step.name].set_result(None)

    async def compensate(self) -> None:
        """Run the `on_failure` action of each completed step, the last completed first."""
        for name in reversed(self.completed):
            compensation = self.steps[name].on_failure
            if compensation is None:
                continue
            state = self.state.steps[name]
            try:
                context = self.context()
                step_input = (
                    render(compensation.with_, context) if compensation.with_ is not None else self.request.input
                )
                await self._activity(name, self.request.compensations[name], step_input, None, compensation=True)
            except (FailureError, ExpressionError) as exc:
                state.compensation = "failed"
                state.compensation_error = _reason(exc)[0] if isinstance(exc, FailureError) else str(exc)
                continue
            state.compensation = "succeeded"
            state.status = "compensated"

    async def _activity(
        self, step: str, route: Route, step_input: Any, retries: Retries | None, *, compensation: bool = False
    ) -> StepResult:
        request = StepRequest(
            workflow_id=workflow.info().workflow_id,
            step=step,
            compensation=compensation,
            agent=route.agent,
            action=route.action,
            timeout_s=route.timeout_s,
            input=step_input,
            event=self.request.event,
            events=self.request.events,
            team_id=self.request.team_id,
        )
        timeout = timedelta(seconds=route.timeout_s + TIMEOUT_GRACE_S)
        # A cancelled step has really stopped before compensation starts.
        cancellation = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        if route.local:
            # In this worker (it serves the pool: `temporal.local_pools`), within this workflow task.
            local: StepResult = await workflow.execute_local_activity(
                RUN_STEP,
                request,
                result_type=StepResult,
                start_to_close_timeout=timeout,
                retry_policy=_retry_policy(retries),
                cancellation_type=cancellation,
            )
            return local
        result: StepResult = await workflow.execute_activity(
            RUN_STEP,
            request,
            result_type=StepResult,
            task_queue=route.queue,
            start_to_close_timeout=timeout,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=_retry_policy(retries),
            cancellation_type=cancellation,
        )
        return result


@workflow.defn(name=WORKFLOW_NAME)
class HooklineRun:
    def __init__(self) -> None:
        self._run: _Run | None = None
        self._resolved: Resolved | None = None
        self._lane_asked = False

    @workflow.query(name=STATE_QUERY)
    def state(self) -> RunState | None:
        return self._run.state if self._run else None

    @workflow.signal(name=RESOLVED_SIGNAL)
    def resolved(self, signal: Resolved) -> None:
        # Signals of a signal-with-start arrive before `run` begins; keep the first one.
        if self._resolved is None:
            self._resolved = signal
            if self._run is not None:
                self._run.resolve(signal)

    @workflow.update(name=APPROVAL_UPDATE)
    def decide(self, request: DecisionRequest) -> ApprovalState:
        """Decide an approval (docs/waiting-steps.md); the first decision wins, exactly once."""
        return self._waiting().decide(request)

    @decide.validator
    def check_decision(self, request: DecisionRequest) -> None:
        self._waiting().check(request)

    def _waiting(self) -> Waiting:
        if self._run is None:
            raise ApplicationError("the run has not begun", type="NotWaiting")
        return self._run.waiting

    @workflow.signal(name=WAIT_EVENT_SIGNAL)
    def wait_event(self, match: WaitMatch) -> None:
        if self._run is not None:
            self._run.waiting.matched(match)

    @workflow.signal(name=LANE_PING)
    def lane_ping(self) -> None:
        """The lane that started the run has continued as new since (it lost the run's handle):
        taking the signal tells it the run still runs, and the run tells it when it ends."""
        self._lane_asked = True

    @workflow.run
    async def run(self, request: RunRequest) -> RunState:
        self._run = _Run(request)
        if self._resolved is None:  # a signal that came first wins, as between two signals
            self._resolved = request.resolved
        if self._resolved is not None:
            self._run.resolve(self._resolved)
        try:
            return await self._run.execute()
        finally:
            if request.lane is not None and self._lane_asked and workflow.patched(_TELLS_ITS_LANE):
                await asyncio.shield(self._tell_lane(request.lane))

    @staticmethod
    async def _tell_lane(lane: str) -> None:
        """Tell the lane the run has ended, so that it frees the run's slot although it may have
        continued as new since it started the run (and lost the run's handle)."""
        try:
            await workflow.get_external_workflow_handle(lane).signal(LANE_RUN_ENDED, workflow.info().workflow_id)
        except Exception:  # noqa: S110 - the lane has ended: no slot to free
            pass

"""The interpreter: one workflow runs any definition. Deterministic: no I/O, no clocks."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.run import WORKFLOW_NAME, RunRequest, RunState, StepRequest, StepResult, StepState
    from schemas.workflow import Step
    from worker.activities import RUN_STEP

__all__ = ["HooklineRun"]

STEP_TIMEOUT = timedelta(minutes=30)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
DEFAULT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


@workflow.defn(name=WORKFLOW_NAME)
class HooklineRun:
    def __init__(self) -> None:
        self._state: RunState | None = None

    @workflow.query
    def state(self) -> RunState | None:
        return self._state

    @workflow.run
    async def run(self, request: RunRequest) -> RunState:
        definition = request.definition
        state = self._state = RunState(
            definition_id=request.definition_id,
            definition_version=request.definition_version,
            steps={s.name: StepState() for s in definition.all_steps()},
        )
        deps = definition.dependencies()
        done: dict[str, asyncio.Future[None]] = {
            s.name: asyncio.get_running_loop().create_future() for s in definition.all_steps()
        }

        async def run_step(step: Step) -> None:
            for name in deps[step.name]:
                await done[name]
            state.steps[step.name].status = "running"
            try:
                result: StepResult = await workflow.execute_activity(
                    RUN_STEP,
                    StepRequest(
                        workflow_id=workflow.info().workflow_id,
                        step=step.name,
                        agent=step.agent_name,
                        input=request.input,
                        event=request.event,
                    ),
                    result_type=StepResult,
                    task_queue=request.queues[step.agent_name],
                    start_to_close_timeout=STEP_TIMEOUT,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=DEFAULT_RETRY,
                )
            except ActivityError as exc:
                cause = exc.cause.message if isinstance(exc.cause, ApplicationError) else str(exc.cause)
                state.steps[step.name] = StepState(status="failed", error=cause)
                raise ApplicationError(
                    f"step {step.name!r} failed: {cause}", type="StepFailed", non_retryable=True
                ) from exc
            state.steps[step.name] = StepState(status="succeeded", output=result.output[-1000:])
            done[step.name].set_result(None)

        try:
            async with asyncio.TaskGroup() as group:
                for step in definition.all_steps():
                    group.create_task(run_step(step))
        except BaseExceptionGroup as group_error:
            state.status = "failed"
            for step_state in state.steps.values():
                if step_state.status in ("pending", "running"):
                    step_state.status = "skipped"
            first = group_error.exceptions[0]
            raise first if isinstance(first, ApplicationError) else ApplicationError(str(first)) from first
        state.status = "succeeded"
        return state

"""The step activity: look up the agent, hand the step to its runner, classify the outcome."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from hookline.logging import get_logger
from schemas.agents import AgentCatalog
from schemas.run import StepRequest, StepResult
from worker.runners import Runner, StepFailed

__all__ = ["RUN_STEP", "StepActivities"]

RUN_STEP = "run_step"
log = get_logger(__name__)


class StepActivities:
    """Dependencies come in through `__init__`; one instance serves every runner pool of a worker."""

    def __init__(self, agents: AgentCatalog, runners: dict[str, Runner]) -> None:
        self._agents = agents
        self._runners = runners

    @activity.defn(name=RUN_STEP)
    async def run_step(self, request: StepRequest) -> StepResult:
        info = activity.info()
        bound = log.bind(workflow_id=request.workflow_id, step=request.step, agent=request.agent, attempt=info.attempt)
        agent = self._agents.get(request.agent)
        if agent is None:
            raise ApplicationError(
                f"unknown agent {request.agent!r} on this worker", type="UnknownAgent", non_retryable=True
            )
        runner = self._runners.get(agent.runner)
        if runner is None:
            raise ApplicationError(
                f"agent {agent.name!r} needs runner {agent.runner!r}, not served here",
                type="UnknownRunner",
                non_retryable=True,
            )
        bound.info("step started")
        try:
            result = await runner.run(agent, request)
        except StepFailed as exc:
            bound.warning("step failed", error=str(exc), retryable=exc.retryable)
            raise ApplicationError(
                str(exc), exc.output[-2000:], type="StepFailed", non_retryable=not exc.retryable
            ) from exc
        bound.info("step succeeded")
        return result

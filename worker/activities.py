"""The step activity: find the agent (or inline action), hand the step to its runner, classify
the outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from temporalio import activity
from temporalio.exceptions import ApplicationError

from hookline.logging import get_logger
from hookline.tracing import linked_span
from schemas.agents import Agent, AgentCatalog
from schemas.run import RUN_STEP, StepRequest, StepResult
from schemas.workflow import DEFAULT_TEAM
from worker.errors import StepFailed
from worker.metrics import WorkerMetrics
from worker.runners import InlineCapped, Runner
from worker.secrets import Secrets

__all__ = ["RUN_STEP", "StepActivities"]

HEARTBEAT_EVERY_S = 2.0
log = get_logger(__name__)


def _config_error(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, {"attempt": activity.info().attempt}, type=kind, non_retryable=True)


def _parsed(output: str) -> Any:
    """Output that is JSON becomes data later steps can address; anything else stays text."""
    text = output.strip()
    if not text or text[0] not in "{[":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


@contextlib.asynccontextmanager
async def _heartbeating(every_s: float) -> AsyncIterator[None]:
    """Heartbeat while the runner works: they tell Temporal the worker is alive and are how a
    cancellation reaches the step (as asyncio.CancelledError in the runner)."""

    if activity.info().is_local:  # a local activity has no heartbeats; its cancellation comes in-process
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class StepActivities:
    """Dependencies come in through `__init__`; one instance serves every runner pool of a worker."""

    def __init__(
        self,
        agents: AgentCatalog,
        runners: dict[str, Runner[Any]],
        *,
        inline_runners: frozenset[str],
        heartbeat_s: float = HEARTBEAT_EVERY_S,
        secrets: Secrets | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._agents = agents
        self._secrets = secrets or Secrets()
        self._runners = runners
        self._inline = inline_runners
        self._heartbeat_s = heartbeat_s
        self._metrics = metrics or WorkerMetrics()

    def _agent_for(self, request: StepRequest) -> Agent:
        if request.action is not None:
            action = request.action
            if action.runner not in self._inline:
                raise _config_error(
                    f"inline actions for runner {action.runner!r} are disabled on this worker "
                    "(worker.inline_runners); use an agent",
                    "InlineActionDisabled",
                )
            try:
                # Resolved here, on the worker: only the references are in the run's history.
                env, options = self._secrets.resolve(action.env), self._secrets.resolve(action.options)
            except StepFailed as exc:
                raise _config_error(str(exc), "Config") from None
            return Agent(
                name=f"inline:{request.step}",
                runner=action.runner,
                pool=action.pool,
                command=action.command,
                env=env,
                timeout_s=request.timeout_s or 300.0,
                options=options,
            )
        agent = self._agents.get(request.agent or "")
        if agent is None:
            raise _config_error(f"unknown agent {request.agent!r} on this worker", "UnknownAgent")
        team = request.team_id or DEFAULT_TEAM
        if not agent.allows(team):  # a definition saved before the agent was limited to teams
            raise _config_error(f"agent {agent.name!r} is not available to team {team!r} on this worker", "Config")
        if request.timeout_s is not None:
            agent = agent.model_copy(update={"timeout_s": request.timeout_s})
        return agent

    @activity.defn(name=RUN_STEP)
    async def run_step(self, request: StepRequest) -> StepResult:
        attempt = activity.info().attempt
        bound = log.bind(
            workflow_id=request.workflow_id,
            step=request.step,
            agent=request.agent,
            attempt=attempt,
            compensation=request.compensation,
        )
        agent = self._agent_for(request)
        runner = self._runners.get(agent.runner)
        if runner is None:
            # Retryable: the next attempt may land on a worker that serves the kind (a worker
            # refuses to poll a pool with kinds it lacks, but an inline action can name any pool).
            raise ApplicationError(
                f"agent {agent.name!r} needs runner {agent.runner!r}, not served by this worker",
                {"attempt": attempt},
                type="UnknownRunner",
            )
        bound.info("step started")
        started_at = datetime.now(UTC)
        try:
            options = runner.check(agent)
            if request.action is not None and isinstance(runner, InlineCapped):
                # Options written in a definition, not by the operator: capped by the worker's policy.
                runner.check_inline(agent, options)
            traces = (event.extensions.get("traceparent") for event in request.events)
            with self._metrics.step(agent.pool_name, agent.runner), linked_span("hookline.step.events", traces):
                async with _heartbeating(self._heartbeat_s):
                    result = await runner.run(agent, options, request)
        except StepFailed as exc:
            bound.warning("step failed", error=str(exc), kind=exc.kind, retryable=exc.retryable)
            raise ApplicationError(
                str(exc),
                {"attempt": attempt, "output": exc.output[-2000:]},
                type=exc.kind,
                non_retryable=not exc.retryable,
            ) from exc
        bound.info("step succeeded")
        return result.model_copy(
            update={
                "attempt": attempt,
                "data": _parsed(result.output),
                "started_at": started_at,
                "finished_at": datetime.now(UTC),
            }
        )

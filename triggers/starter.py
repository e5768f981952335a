"""Starting workflows exactly once: the workflow id is derived from definition + dedupe key."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from hookline.definitions import StoredDefinition
from hookline.logging import get_logger
from hookline.settings import TemporalSettings
from hookline.temporal import SA_DEFINITION, SA_EVENT, SA_SOURCE
from schemas.agents import AgentCatalog
from schemas.events import Event
from schemas.run import WORKFLOW_NAME, RunRequest
from triggers.errors import Unprocessable

__all__ = ["WorkflowStarter", "workflow_id_for"]

log = get_logger(__name__)

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


def workflow_id_for(definition_id: str, dedupe_key: str) -> str:
    return f"{definition_id}:{dedupe_key}"


def route_steps(stored: StoredDefinition, agents: AgentCatalog, settings: TemporalSettings) -> dict[str, str]:
    """Agent name → task queue of its runner pool; an unknown agent makes the run unstartable."""
    queues: dict[str, str] = {}
    for step in stored.definition.all_steps():
        agent = agents.get(step.agent_name)
        if agent is None:
            raise Unprocessable(
                f"definition {stored.id} v{stored.version}: step {step.name!r} names unknown agent {step.agent_name!r}"
            )
        queues[agent.name] = settings.runner_queue(agent.pool_name)
    return queues


class WorkflowStarter:
    def __init__(
        self,
        client: Client,
        settings: TemporalSettings,
        agents: AgentCatalog,
        *,
        retry_max_s: float,
        stopping: asyncio.Event,
    ) -> None:
        self._client = client
        self._settings = settings
        self._agents = agents
        self._retry_max_s = retry_max_s
        self._stopping = stopping

    async def start(self, event: Event, stored: StoredDefinition) -> tuple[str, bool]:
        """Start (or find) the run for this event; returns (workflow id, newly started).

        Retries while Temporal is unreachable; raises `Unprocessable` for permanent faults and
        `asyncio.CancelledError` if the service is stopping (the record stays uncommitted).
        """
        workflow_id = workflow_id_for(stored.id, event.dedupekey)
        request = RunRequest(
            definition_id=stored.id,
            definition_version=stored.version,
            definition=stored.definition,
            input=event.model_dump(mode="json"),
            event=event,
            queues=route_steps(stored, self._agents, self._settings),
        )
        delay = 0.1
        while True:
            try:
                handle = await self._client.start_workflow(
                    WORKFLOW_NAME,
                    request,
                    id=workflow_id,
                    task_queue=self._settings.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(SA_DEFINITION, stored.id),
                            SearchAttributePair(SA_EVENT, event.id),
                            SearchAttributePair(SA_SOURCE, event.hooklinesource or event.source),
                        ]
                    ),
                )
                # The SDK keeps the server's answer private; `started` is false when
                # USE_EXISTING found a run already going for this id.
                response = getattr(handle, "_start_workflow_response", None)
                return workflow_id, bool(getattr(response, "started", True))
            except WorkflowAlreadyStartedError:
                return workflow_id, False  # the run for this occurrence exists or existed: done
            except RPCError as exc:
                if exc.status not in _TRANSIENT:
                    raise Unprocessable(f"Temporal rejected the start of {workflow_id}: {exc.message}") from exc
                log.warning(
                    "temporal unavailable, retrying start", workflow_id=workflow_id, error=exc.message, retry_in_s=delay
                )
            if self._stopping.is_set():
                raise asyncio.CancelledError("stopping with the record uncommitted")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

"""Starting workflows exactly once: the workflow id is derived from definition + dedupe key."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from hookline.definitions import StoredDefinition
from hookline.logging import get_logger
from hookline.runs import NotStartable, build_request, start_run
from hookline.settings import TemporalSettings
from schemas.agents import AgentCatalog
from schemas.events import Event
from schemas.expressions import ExpressionError, render
from schemas.filters import event_context
from schemas.workflow import Trigger
from triggers.errors import Unprocessable

__all__ = ["WorkflowStarter", "trigger_input", "workflow_id_for"]

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


def trigger_input(trigger: Trigger, event: Event) -> dict[str, Any]:
    """The start input: the trigger's `input` mapping rendered over the event, or the event's data."""
    if trigger.input is None:
        return event.data
    rendered = render(trigger.input, event_context(event.model_dump(mode="json")))
    if not isinstance(rendered, dict):
        raise ExpressionError(f"the trigger's input must render to an object, got {type(rendered).__name__}")
    return rendered


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

    async def start(self, event: Event, stored: StoredDefinition, trigger: Trigger) -> tuple[str, bool]:
        """Start (or find) the run for this event; returns (workflow id, newly started).

        Retries while Temporal is unreachable; raises `Unprocessable` for permanent faults and
        `asyncio.CancelledError` if the service is stopping (the record stays uncommitted).
        """
        workflow_id = workflow_id_for(stored.id, event.dedupekey)
        try:
            run_input = trigger_input(trigger, event)
            request = build_request(stored, self._agents, self._settings, input=run_input, event=event)
        except (NotStartable, ExpressionError) as exc:
            raise Unprocessable(f"definition {stored.id} v{stored.version}: {exc}") from exc
        delay = 0.1
        while True:
            try:
                _, started = await start_run(self._client, self._settings, request, workflow_id)
                return workflow_id, started
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

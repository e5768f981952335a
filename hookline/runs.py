"""Starting runs, shared by the triggers (events) and the API (manual starts).

A run request pins the definition version and resolves, once, where every step runs: the
agent catalog may change later, a running workflow does not.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from hookline.definitions import StoredDefinition
from hookline.settings import TemporalSettings
from hookline.temporal import SA_DEFINITION, SA_EVENT, SA_SOURCE, SA_TEAM
from schemas.agents import AgentCatalog
from schemas.events import Event
from schemas.run import WORKFLOW_NAME, Route, RunRequest, RunState
from schemas.validation import SchemaError
from schemas.workflow import DEFAULT_TEAM, Action, DefinitionError

__all__ = ["DEFAULT_TEAM", "NotStartable", "build_request", "start_run", "team_of"]

# Fallback step timeout for inline actions (agents carry their own default).
_INLINE_TIMEOUT_S = 300.0


class NotStartable(ValueError):
    """The definition cannot run here (an agent it names is not configured), or not with this
    input; `errors` lists each problem with its location when there are several."""

    def __init__(self, message: str, errors: list[SchemaError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def team_of(stored: StoredDefinition) -> str:
    return stored.definition.team_id or DEFAULT_TEAM


def _route(
    agents: AgentCatalog,
    settings: TemporalSettings,
    where: str,
    agent_name: str | None,
    action: Action | None,
    timeout_s: float | None,
) -> Route:
    if action is not None:
        return Route(
            queue=settings.runner_queue(action.pool or action.runner),
            timeout_s=timeout_s or _INLINE_TIMEOUT_S,
            action=action,
        )
    agent = agents.get(agent_name or "")
    if agent is None:
        raise NotStartable(f"{where} names unknown agent {agent_name!r}")
    return Route(queue=settings.runner_queue(agent.pool_name), timeout_s=timeout_s or agent.timeout_s, agent=agent.name)


def build_request(
    stored: StoredDefinition,
    agents: AgentCatalog,
    settings: TemporalSettings,
    *,
    input: dict[str, Any] | None = None,
    event: Event | None = None,
) -> RunRequest:
    """The workflow argument for a run of `stored`; raises `NotStartable`."""
    routes: dict[str, Route] = {}
    compensations: dict[str, Route] = {}
    prefix = f"definition {stored.id} v{stored.version}: step"
    for step in stored.definition.all_steps():
        routes[step.name] = _route(
            agents, settings, f"{prefix} {step.name!r}", step.agent_name, step.action, step.timeout
        )
        comp = step.on_failure
        if comp is not None:
            compensations[step.name] = _route(
                agents, settings, f"{prefix} {step.name!r} on_failure", comp.agent, comp.action, comp.timeout
            )
    try:
        checked = stored.definition.checked_input(input or {})
    except DefinitionError as exc:
        raise NotStartable(f"the input does not match the definition's inputs: {exc}", exc.errors) from exc
    return RunRequest(
        definition_id=stored.id,
        definition_version=stored.version,
        definition=stored.definition,
        input=checked,
        event=event,
        team_id=team_of(stored),
        routes=routes,
        compensations=compensations,
    )


async def start_run(
    client: Client,
    settings: TemporalSettings,
    request: RunRequest,
    workflow_id: str,
    *,
    signal: tuple[str, Any] | None = None,
) -> tuple[WorkflowHandle[Any, RunState], bool]:
    """Start the run under `workflow_id`, or find the one already there: (handle, newly started).

    USE_EXISTING answers a running duplicate; REJECT_DUPLICATE (raising
    WorkflowAlreadyStartedError) a finished one. Either way the id runs once. With `signal`
    (name, argument) it is a signal-with-start: a running run gets the signal, and a run that
    does not exist yet starts with it already delivered.
    """
    pairs = [
        SearchAttributePair(SA_DEFINITION, request.definition_id),
        SearchAttributePair(SA_TEAM, request.team_id or DEFAULT_TEAM),
    ]
    if request.event is not None:
        pairs.append(SearchAttributePair(SA_EVENT, request.event.id))
        pairs.append(SearchAttributePair(SA_SOURCE, request.event.hooklinesource or request.event.source))
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        request,
        id=workflow_id,
        task_queue=settings.task_queue,
        result_type=RunState,
        id_conflict_policy=WorkflowIDConflictPolicy.UNSPECIFIED if signal else WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(pairs),
        start_signal=signal[0] if signal else None,
        start_signal_args=[signal[1]] if signal else [],
    )
    # The SDK keeps the server's answer private; `started` is false when USE_EXISTING found a
    # run already going for this id.
    response = getattr(handle, "_start_workflow_response", None)
    return handle, bool(getattr(response, "started", True))

"""Starting runs, shared by the triggers (events) and the API (manual starts).

A run request pins the definition version and resolves, once, where every step runs: the
agent catalog may change later, a running workflow does not.

Workflow ids are deterministic where the run must happen once, and each kind of run has an id
space of its own, named by the segment after the definition id, so that no sender can occupy
or pre-empt the id of another kind of run (nor an event of another source):

| kind | workflow id |
|---|---|
| event | `<definition>:event:<source>/<dedupe key>` |
| schedule tick | `<definition>:schedule:<trigger index>-<slot, UTC>` |
| manual start | `<definition>:manual:<random hex>` |
| start with Idempotency-Key | `<definition>:key:<hash of team and key>` |
| retry of an earlier run | `<definition>:retry:<random hex>` |
| the lane of a flow-control key (not a run) | `<definition>:lane:<hash of the key>` |
| a debounced or batched run | `<definition>:debounce:` or `:batch:` + its first event's `<source>/<dedupe key>` |
| the mailbox of a `wait_for` step's correlation key (not a run) | `<definition>:wait:<hash of step and key>` |

Definition ids and source names hold no `:` or `/` (a `kafka` trigger's source is
`kafka:<topic>`, which holds one `:` and no `/`), so the source ends at the first `/`.
`<definition>` is the definition's id, which is scoped by team (`schemas.workflow.qualified_id`):
`deploy-application` in the default team, `team-uuid~deploy-application` in team `team-uuid`, so
two teams' runs never share an id either. The search attributes carry the same id and the team.
"""

from __future__ import annotations

import hashlib
import uuid
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
from hookline.temporal import SA_DEFINITION, SA_EVENT, SA_RETRY_OF, SA_SOURCE, SA_TEAM, SA_TRIGGER
from schemas.agents import AgentCatalog
from schemas.events import Event
from schemas.run import WORKFLOW_NAME, Route, RunRequest, RunState
from schemas.ticks import TICK_SOURCE
from schemas.validation import SchemaError
from schemas.workflow import DEFAULT_TEAM, Action, DefinitionError

__all__ = [
    "DEFAULT_TEAM",
    "NotStartable",
    "build_request",
    "event_run_id",
    "keyed_run_id",
    "lane_id",
    "manual_run_id",
    "retry_run_id",
    "run_search_attributes",
    "start_run",
    "team_of",
    "trigger_kind",
    "waits_id",
    "workflow_id_for",
]

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


def event_run_id(definition_id: str, source: str, dedupe_key: str) -> str:
    """The run an event of configured source `source` starts: a sender picks its dedupe key,
    never its source, so it reaches only its own source's runs."""
    return f"{definition_id}:event:{source.replace('/', '%2F')}/{dedupe_key}"


def workflow_id_for(definition_id: str, event: Event, dedupe_key: str | None = None) -> str:
    """The run `event` starts (or, with `dedupe_key` = `event.resolves`, the run of the event of
    the same source that it resolves). Ticks have their own space: their key is Hookline's."""
    key = event.dedupekey if dedupe_key is None else dedupe_key
    if event.hooklinesource == TICK_SOURCE:
        return f"{definition_id}:schedule:{key.removeprefix('schedule-')}"
    return event_run_id(definition_id, event.hooklinesource, key)


def manual_run_id(definition_id: str) -> str:
    return f"{definition_id}:manual:{uuid.uuid4().hex}"


def lane_id(definition_id: str, key: str) -> str:
    """The lane of `definition_id` for flow-control key `key` (docs/flow-control.md); any text
    may be a key, so it is hashed into the id."""
    return f"{definition_id}:lane:{hashlib.sha256(key.encode('utf-8', 'backslashreplace')).hexdigest()[:32]}"


def waits_id(definition_id: str, step: str, key: str) -> str:
    """The mailbox where events for `definition_id`'s `wait_for` step `step` with correlation
    key `key` meet the runs waiting for them (docs/waiting-steps.md); the triggers and the
    runs both reach it by this id."""
    digest = hashlib.sha256(f"{step}\0{key}".encode("utf-8", "backslashreplace")).hexdigest()[:32]
    return f"{definition_id}:wait:{digest}"


def retry_run_id(definition_id: str) -> str:
    return f"{definition_id}:retry:{uuid.uuid4().hex}"


#: The id segment of each kind of run → the trigger kind the API filters by.
_KINDS = {
    "event": "event",
    "debounce": "event",
    "batch": "event",
    "schedule": "schedule",
    "manual": "manual",
    "key": "manual",
    "retry": "retry",
}


def trigger_kind(workflow_id: str, *, event: bool = False) -> str:
    """What started the run of `workflow_id`: event, schedule, manual or retry, by its id space;
    for an id of no known space, an event if it has one (`event`), else manual."""
    parts = workflow_id.split(":", 2)
    return _KINDS.get(parts[1] if len(parts) == 3 else "", "event" if event else "manual")


def keyed_run_id(definition_id: str, team: str, key: str) -> str:
    """A start with an Idempotency-Key: the same team and key give the same run."""
    digest = hashlib.sha256(team.encode() + b"\0" + key.encode("utf-8", "backslashreplace")).hexdigest()
    return f"{definition_id}:key:{digest[:32]}"


def _route(
    agents: AgentCatalog,
    team: str,
    settings: TemporalSettings,
    where: str,
    agent_name: str | None,
    action: Action | None,
    timeout_s: float | None,
) -> Route:
    if action is not None:
        pool, timeout = action.pool or action.runner, timeout_s or _INLINE_TIMEOUT_S
        return Route(
            queue=settings.runner_queue(pool),
            timeout_s=timeout,
            action=action,
            local=settings.runs_locally(pool, timeout),
        )
    agent = agents.get(agent_name or "")
    if agent is None or not agent.allows(team):  # another team's agent does not exist for this one
        raise NotStartable(f"{where} names unknown agent {agent_name!r}")
    timeout = timeout_s or agent.timeout_s
    return Route(
        queue=settings.runner_queue(agent.pool_name),
        timeout_s=timeout,
        agent=agent.name,
        local=settings.runs_locally(agent.pool_name, timeout),
    )


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
    team = team_of(stored)
    for step in stored.definition.all_steps():
        if step.waits is not None:  # an approval, wait_for or sleep runs nowhere
            continue
        routes[step.name] = _route(
            agents, team, settings, f"{prefix} {step.name!r}", step.agent_name, step.action, step.timeout
        )
        comp = step.on_failure
        if comp is not None:
            compensations[step.name] = _route(
                agents, team, settings, f"{prefix} {step.name!r} on_failure", comp.agent, comp.action, comp.timeout
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


def run_search_attributes(
    request: RunRequest, workflow_id: str, *, retry_of: str | None = None
) -> list[SearchAttributePair[str]]:
    """The search attributes of a run: its definition, team, trigger kind, and its event and
    source, or the run it retries."""
    pairs = [
        SearchAttributePair(SA_DEFINITION, request.definition_id),
        SearchAttributePair(SA_TEAM, request.team_id or DEFAULT_TEAM),
        SearchAttributePair(SA_TRIGGER, trigger_kind(workflow_id, event=request.event is not None)),
    ]
    if retry_of is not None:
        pairs.append(SearchAttributePair(SA_RETRY_OF, retry_of))
    if request.event is not None:
        pairs.append(SearchAttributePair(SA_EVENT, request.event.id))
        pairs.append(SearchAttributePair(SA_SOURCE, request.event.hooklinesource or request.event.source))
    return pairs


async def start_run(
    client: Client,
    settings: TemporalSettings,
    request: RunRequest,
    workflow_id: str,
    *,
    signal: tuple[str, Any] | None = None,
    retry_of: str | None = None,
    eager: bool = False,
) -> tuple[WorkflowHandle[Any, RunState], bool]:
    """Start the run under `workflow_id`, or find the one already there: (handle, newly started).

    USE_EXISTING answers a running duplicate; REJECT_DUPLICATE (raising
    WorkflowAlreadyStartedError) a finished one. Either way the id runs once. With `signal`
    (name, argument) it is a signal-with-start: a running run gets the signal, and a run that
    does not exist yet starts with it already delivered. `retry_of` names the execution a
    retry repeats. `eager` asks Temporal to hand the run's first workflow task back with the
    start, to a worker on `client` in this process (a signal-with-start is never eager).
    """
    pairs = run_search_attributes(request, workflow_id, retry_of=retry_of)
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        request,
        id=workflow_id,
        task_queue=settings.task_queue,
        result_type=RunState,
        id_conflict_policy=WorkflowIDConflictPolicy.UNSPECIFIED if signal else WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(pairs),
        task_timeout=settings.task_timeout([*request.routes.values(), *request.compensations.values()]),
        start_signal=signal[0] if signal else None,
        start_signal_args=[signal[1]] if signal else [],
        request_eager_start=eager and signal is None,
    )
    # The SDK keeps the server's answer private; `started` is false when USE_EXISTING found a
    # run already going for this id.
    response = getattr(handle, "_start_workflow_response", None)
    return handle, bool(getattr(response, "started", True))

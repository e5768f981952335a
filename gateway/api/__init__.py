"""The REST API under /api/v1: workflow definitions, manual starts, executions, agents.

`ROUTES` is the one table both the aiohttp router and the OpenAPI document are built from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.api.agents import list_agents
from gateway.api.approvals import decide_approval, list_approvals
from gateway.api.audit import list_audit
from gateway.api.dlq import list_dlq, replay_dlq
from gateway.api.event_log import get_event, list_events
from gateway.api.events import explain_event
from gateway.api.execution_ops import bulk_cancel, bulk_retry, retry_execution
from gateway.api.executions import (
    FILTERABLE,
    cancel_execution,
    execution_history,
    get_execution,
    list_all_executions,
    list_executions,
    start_workflow,
)
from gateway.api.lanes import list_lanes
from gateway.api.models import (
    AgentList,
    ApprovalList,
    AuditList,
    BulkResult,
    CancelRequested,
    DeadLetterList,
    Deleted,
    DlqReplayed,
    EventList,
    EventRecord,
    Execution,
    ExecutionApproval,
    ExecutionList,
    Explanations,
    History,
    LaneList,
    OpenApiDocument,
    Overview,
    RunnerList,
    Started,
    ValidationResult,
    Workflow,
    WorkflowList,
)
from gateway.api.openapi import SPEC, encode_spec, serve_openapi
from gateway.api.overview import overview
from gateway.api.routing import API_PREFIX, Param, Route, guarded
from gateway.api.runners import list_runners
from gateway.api.state import API, ApiState
from gateway.api.workflows import (
    create_workflow,
    delete_workflow,
    get_workflow,
    list_workflows,
    replace_workflow,
    validate_workflow,
)
from gateway.publisher import RecentEvents
from gateway.settings import GatewaySettings
from gateway.sources import Source
from schemas.agents import AgentCatalog

__all__ = ["API_PREFIX", "ROUTES", "ApiState", "Route", "add_api_routes"]

_DEFINITION_WRITE = (400, 413, 415, 422, 503)
_IF_MATCH = Param(
    "If-Match",
    "header",
    'Only if this version is current: its ETag (`"3"`) or number; `*`: if any is. Otherwise 412.',
)
_IF_NONE_MATCH = Param("If-None-Match", "header", "`*`: only if the definition does not exist yet (else 412).")

_PENDING = {"enum": ["pending"]}
_EXECUTION_FILTERS = (
    Param("status", "query", "Only executions in this state.", {"enum": [status.value for status in FILTERABLE]}),
    Param("definition", "query", "Only executions of this definition (its id)."),
    Param("team", "query", "Only this team's executions (a team-bound token may name only its own: 403)."),
    Param("source", "query", "Only executions started by events of this source."),
    Param("event", "query", "Only executions started by this event (its id)."),
    Param("trigger", "query", "Only executions started so.", {"enum": ["event", "schedule", "manual", "retry"]}),
    Param("since", "query", "Started at or after this time (ISO 8601).", {"type": "string", "format": "date-time"}),
    Param("until", "query", "Started before this time (ISO 8601).", {"type": "string", "format": "date-time"}),
    Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
    Param("cursor", "query", "`next_cursor` of the previous page."),
)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/workflows",
        create_workflow,
        "write",
        "Create a workflow definition (version 1)",
        {201: Workflow},
        (*_DEFINITION_WRITE, 409),
        body="WorkflowDefinition",
        audit="definition.create",
    ),
    Route(
        "GET",
        "/workflows",
        list_workflows,
        "read",
        "List the workflow definitions the token's team may see, by id",
        {200: WorkflowList},
        (400, 503),
        params=(
            Param("team", "query", "Only this team's definitions (a team-bound token may name only its own: 403)."),
            Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route(
        "POST",
        "/workflows/validate",
        validate_workflow,
        "read",
        "Validate a workflow definition without saving it",
        {200: ValidationResult},
        (400, 413, 415),
        body="WorkflowDefinition",
    ),
    Route(
        "GET",
        "/workflows/{workflow_id}",
        get_workflow,
        "read",
        "Read a workflow definition: the current version, or ?version=N",
        {200: Workflow},
        (400, 404, 503),
        params=(Param("version", "query", "A stored version number.", {"type": "integer", "minimum": 1}),),
    ),
    Route(
        "PUT",
        "/workflows/{workflow_id}",
        replace_workflow,
        "write",
        "Create or replace a workflow definition (a changed body becomes a new version)",
        {200: Workflow, 201: Workflow},
        (*_DEFINITION_WRITE, 404, 409, 412),
        body="WorkflowDefinition",
        params=(_IF_MATCH, _IF_NONE_MATCH),
        audit="definition.replace",
    ),
    Route(
        "DELETE",
        "/workflows/{workflow_id}",
        delete_workflow,
        "write",
        "Delete a workflow definition; its versions stay readable, its executions run on",
        {200: Deleted},
        (400, 404, 409, 412, 503),
        params=(_IF_MATCH,),
        audit="definition.delete",
    ),
    Route(
        "POST",
        "/workflows/{workflow_id}/start",
        start_workflow,
        "execute",
        "Start a run of the definition's current version; the same Idempotency-Key answers the same run",
        {202: Started},
        (400, 404, 412, 413, 415, 422, 503),
        body="StartRequest",
        params=(
            _IF_MATCH,
            Param(
                "Idempotency-Key",
                "header",
                "Retries with the same key (per team and definition) answer the execution of the first.",
            ),
        ),
        audit="run.start",
    ),
    Route(
        "GET",
        "/workflows/{workflow_id}/executions",
        list_executions,
        "read",
        "List the definition's executions (manual and triggered), newest first",
        {200: ExecutionList},
        (400, 404, 503),
        params=(
            Param(
                "status",
                "query",
                "Only executions in this state.",
                {"enum": [status.value for status in FILTERABLE]},
            ),
            Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route(
        "GET",
        "/workflows/{workflow_id}/lanes",
        list_lanes,
        "read",
        "The definition's flow-control lanes: per key what runs, what waits in which order, what was skipped "
        "or dropped",
        {200: LaneList},
        (404, 503),
    ),
    Route(
        "GET",
        "/executions",
        list_all_executions,
        "read",
        "List the executions of every definition your team may see, newest first, by any filter",
        {200: ExecutionList},
        (400, 403, 503),
        params=_EXECUTION_FILTERS,
    ),
    Route(
        "POST",
        "/executions/retry",
        bulk_retry,
        "execute",
        "Retry every failed or cancelled execution the filter selects (dry_run: count them)",
        {200: BulkResult},
        (400, 403, 413, 415, 422, 503),
        body="BulkRequest",
        audit="runs.retry",
    ),
    Route(
        "POST",
        "/executions/cancel",
        bulk_cancel,
        "execute",
        "Cancel every running execution the filter selects (dry_run: count them)",
        {200: BulkResult},
        (400, 403, 413, 415, 422, 503),
        body="BulkRequest",
        audit="runs.cancel",
    ),
    Route(
        "GET",
        "/executions/{execution_id}",
        get_execution,
        "read",
        "An execution: status, step states, timestamps, trigger event, Temporal UI link",
        {200: Execution},
        (404, 503),
    ),
    Route(
        "GET",
        "/executions/{execution_id}/history",
        execution_history,
        "read",
        "An execution's step-level events, in order",
        {200: History},
        (404, 503),
    ),
    Route(
        "POST",
        "/executions/{execution_id}/retry",
        retry_execution,
        "execute",
        "Start a new run repeating a failed or cancelled execution: its input and event, the version it ran "
        "(or the latest); the new run links to the one it repeats",
        {202: Started},
        (404, 409, 413, 415, 422, 503),
        body="RetryRequest",
        audit="run.retry",
    ),
    Route(
        "POST",
        "/executions/{execution_id}/cancel",
        cancel_execution,
        "execute",
        "Cancel a running execution: its steps stop and completed steps are compensated",
        {202: CancelRequested},
        (404, 409, 503),
        audit="run.cancel",
    ),
    Route(
        "POST",
        "/executions/{execution_id}/approvals/{step}",
        decide_approval,
        "read",
        "Approve or reject an approval step; who may is the step's own rule (its team, scope, tokens: 403 "
        "otherwise). Decided exactly once: a decision after the deciding one is 409, with the approval and its "
        "decisions in the problem's `approval` member (docs/waiting-steps.md)",
        {200: ExecutionApproval},
        (404, 409, 413, 415, 422, 503),
        body="ApprovalRequest",
        audit="approval.decide",
    ),
    Route(
        "GET",
        "/approvals",
        list_approvals,
        "read",
        "The approvals waiting for a decision of your team (an operator: of every team), with what each asks "
        "and the decisions so far",
        {200: ApprovalList},
        (400, 403, 503),
        params=(
            Param("status", "query", "Only `pending` (the default): decided ones are in their run.", _PENDING),
            Param("team", "query", "Only approvals this team decides (a team-bound token may name only its own: 403)."),
            Param("limit", "query", "Runs per page.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route("GET", "/agents", list_agents, "read", "List the configured agents", {200: AgentList}),
    Route(
        "GET",
        "/runners",
        list_runners,
        "read",
        "List the runner pools, their runner kinds, and whether a worker polls each now",
        {200: RunnerList},
        (503,),
    ),
    Route(
        "GET",
        "/events",
        list_events,
        "read",
        "The events the triggers decided that your team may see, newest first",
        {200: EventList},
        (400, 503),
        params=(
            Param("source", "query", "Only events of this configured source."),
            Param("type", "query", "Only events of this CloudEvents type."),
            Param("subject", "query", "Only events with this subject."),
            Param(
                "since",
                "query",
                "Accepted at or after this time (ISO 8601).",
                {"type": "string", "format": "date-time"},
            ),
            Param("until", "query", "Accepted before this time (ISO 8601).", {"type": "string", "format": "date-time"}),
            Param(
                "matched",
                "query",
                "Only events that matched (true) or matched none (false) of your definitions.",
                {"type": "boolean"},
            ),
            Param(
                "label",
                "query",
                "Only events with this label, as key=value (e.g. service=db): an Alertmanager alert's labels, or "
                "any event's top-level `labels` object. Repeat it: all must hold.",
                {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
            ),
            Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route(
        "GET",
        "/events/{event_id}",
        get_event,
        "read",
        "An event as received, when each hop happened, and per definition of your team what it started or "
        "why it did not match (as the version in force then says); an event not decided yet is in_flight",
        {200: EventRecord},
        (404, 503),
    ),
    Route(
        "POST",
        "/events/explain",
        explain_event,
        "read",
        "Which of your definitions an event (or a webhook body of a source) would start, why the others "
        "would not, and with which input and workflow id; starts nothing",
        {200: Explanations},
        (400, 413, 415, 422, 503),
        body="ExplainRequest",
    ),
    Route(
        "GET",
        "/dlq",
        list_dlq,
        "read",
        "The dead letters your team may see (those of its definitions; an operator: all), newest first",
        {200: DeadLetterList},
        (400, 403, 503),
        params=(
            Param("reason", "query", "Only those whose reason contains this text."),
            Param("definition", "query", "Only those dead-lettered for this definition (its id)."),
            Param("topic", "query", "Only those read from this topic."),
            Param("team", "query", "Only this team's (a team-bound token may name only its own: 403)."),
            Param("source", "query", "Only events of this source."),
            Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route(
        "POST",
        "/dlq/replay",
        replay_dlq,
        "execute",
        "Re-publish dead letters (by ids or filter; dry_run: count them) to the topic they came from, each "
        "once: what a record already started is not started again",
        {200: DlqReplayed},
        (400, 403, 413, 415, 422, 503),
        body="DlqReplayRequest",
        audit="dlq.replay",
    ),
    Route(
        "GET",
        "/audit",
        list_audit,
        "read",
        "Who wrote what through the API, when, and how it ended: your team's entries (an operator: all), newest first",
        {200: AuditList},
        (400, 403, 503),
        params=(
            Param("actor", "query", "Only this token's (its name)."),
            Param("team", "query", "Only this team's (a team-bound token may name only its own: 403)."),
            Param("action", "query", "e.g. definition.create, run.retry, dlq.replay."),
            Param("outcome", "query", "succeeded, refused or failed.", {"enum": ["succeeded", "refused", "failed"]}),
            Param("since", "query", "At or after this time (ISO 8601).", {"type": "string", "format": "date-time"}),
            Param("until", "query", "Before this time (ISO 8601).", {"type": "string", "format": "date-time"}),
            Param("limit", "query", "Page size.", {"type": "integer", "minimum": 1}),
            Param("cursor", "query", "`next_cursor` of the previous page."),
        ),
    ),
    Route(
        "GET",
        "/overview",
        overview,
        "read",
        "What needs attention (failed runs, runs waiting for an approval, pools without pollers, DLQ growth), then "
        "events decided per second, runs by status, DLQ size, the triggers' consumer lag, runner pools and waiting "
        "approvals; a part that cannot be read is null and `unavailable` says why",
        {200: Overview},
    ),
    Route(
        "GET",
        "/openapi.json",
        serve_openapi,
        None,
        "This OpenAPI 3.1 document (no token needed)",
        {200: OpenApiDocument},
    ),
)


def add_api_routes(
    app: web.Application,
    settings: GatewaySettings,
    agents: AgentCatalog,
    sources: dict[str, Source],
    recent: RecentEvents | None = None,
) -> None:
    """Register the API's routes on `app`; its dependencies open and close with the app.
    `sources` are the gateway's own, which `/events/explain` parses webhook bodies with;
    `recent`, the events its ingress accepted lately."""
    app[API] = ApiState(settings, agents, sources, recent)
    app[SPEC] = encode_spec(ROUTES)

    async def dependencies(app: web.Application) -> AsyncIterator[None]:
        await app[API].open()
        yield
        await app[API].close()

    app.cleanup_ctx.append(dependencies)
    for route in ROUTES:
        app.router.add_route(route.method, route.url, guarded(route))

"""The API's JSON answers as pydantic models: the handlers build them, and the OpenAPI document's
response schemas are generated from them (`gateway.api.openapi`), so the two cannot differ.

Two answers leave a key out rather than send null (an agent's `teams` for a team token; `step`,
`error` and the like on history events that have none): they are sent with `exclude_unset`,
and their handlers set exactly the keys they send.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema

from hookline.pools import PoolStatus
from schemas.decisions import Outcome as DecisionOutcome
from schemas.run import ApprovalState, StepState
from schemas.validation import SchemaError

__all__ = [
    "Agent",
    "AgentList",
    "ApprovalList",
    "ApprovalRequest",
    "AttentionItem",
    "AuditEntry",
    "AuditList",
    "BulkFailure",
    "BulkRequest",
    "BulkResult",
    "CancelRequested",
    "ConsumerLag",
    "DeadLetter",
    "DeadLetterList",
    "DefinitionExplanation",
    "Deleted",
    "DlqReplayRequest",
    "DlqReplayed",
    "DlqSize",
    "EventDecision",
    "EventExplanation",
    "EventHops",
    "EventList",
    "EventListItem",
    "EventRate",
    "EventRecord",
    "EventSummary",
    "Execution",
    "ExecutionApproval",
    "ExecutionList",
    "ExecutionStatus",
    "ExecutionSummary",
    "Explanations",
    "GroupLag",
    "History",
    "HistoryEvent",
    "Lane",
    "LaneList",
    "OpenApiDocument",
    "Overview",
    "PartitionLag",
    "PoolsPolled",
    "RetryRequest",
    "RunCounts",
    "RunnerList",
    "RunnerPool",
    "ScheduleFailure",
    "ScheduleState",
    "Started",
    "ValidationResult",
    "WaitingApprovals",
    "Workflow",
    "WorkflowList",
    "WorkflowSummary",
]

#: Named links to the resource's own URLs (`self`, `history`, ...).
Links = dict[str, str]
#: A time as recorded, ISO 8601 text (sent as it was stored).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
#: A workflow definition as written, described by `schemas/workflow.schema.json` (in allOf: pydantic
#: would look a bare $ref up among its own models).
DefinitionDocument = Annotated[
    dict[str, Any], WithJsonSchema({"allOf": [{"$ref": "#/components/schemas/WorkflowDefinition"}]})
]
#: What started a run: an event, a schedule's tick, a manual start (with or without a key), a retry.
TriggerKind = Literal["event", "schedule", "manual", "retry", "unknown"]
Cursor = Annotated[str | None, Field(description="Pass as `cursor` for the next page; null on the last.")]


class ExecutionStatus(StrEnum):
    """An execution's status: Temporal's, in the API's words (`unknown`: one Temporal did not say)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"
    UNKNOWN = "unknown"


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- workflow definitions -----------------------------------------------------------------------


class WorkflowSummary(_Answer):
    id: str
    name: str
    description: str | None
    team_id: str
    version: int
    created_at: Timestamp | None
    author: str | None = Field(description="Who wrote this version: the API token's name and team, or the command.")
    triggers: list[dict[str, Any]] = Field(description="Each trigger's type and its source, topic or cron.")
    links: Links


class ScheduleFailure(_Answer):
    """Why a schedule's ticks fail, as the ticker records it (what it may add later is left out)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    count: int
    error: str
    retry_at: Timestamp


class ScheduleState(_Answer):
    """A cron trigger's state as the ticker last recorded it."""

    trigger: int = Field(description="The trigger's index in the definition.")
    cron: str
    timezone: str
    last_tick: Timestamp | None
    failing: ScheduleFailure | None


class Workflow(WorkflowSummary):
    digest: str
    versions: list[int]
    definition: DefinitionDocument
    schedules: list[ScheduleState] = Field(description="Each cron trigger's state as the ticker last recorded it.")


class WorkflowList(_Answer):
    items: list[WorkflowSummary]
    next_cursor: Cursor


class ValidationResult(_Answer):
    valid: bool
    id: str | None = Field(description="The id the definition would be saved under (null: it has errors).")
    errors: list[SchemaError]


class Deleted(_Answer):
    id: str
    deleted: bool
    version: int


# --- executions ---------------------------------------------------------------------------------


class Started(_Answer):
    execution_id: str
    run_id: str | None
    definition_id: str
    definition_version: int
    started: bool = Field(description="False when the Idempotency-Key found an execution.")
    retry_of: str | None = Field(None, description="A retry: the execution it repeats.")
    links: Links


class RetryRequest(_Answer):
    version: Literal["same", "latest"] = Field(
        "same", description="Run the definition version the execution ran (same) or the current one (latest)."
    )


class BulkRequest(_Answer):
    """Which executions a bulk retry or cancel concerns: the filters of `GET /executions`."""

    filter: dict[str, str] = Field(default_factory=dict, description="The query parameters of GET /executions.")
    dry_run: bool = Field(False, description="Only count what would be retried or cancelled.")
    version: Literal["same", "latest"] = Field("same", description="Retries only: as for one retry.")


class BulkFailure(_Answer):
    execution_id: str
    error: str


class BulkResult(_Answer):
    matched: int = Field(description="Executions the filter selects (at most api.bulk_limit are acted on).")
    dry_run: bool
    done: list[str] = Field(description="Retries: the new executions; cancels: the executions asked to cancel.")
    failed: list[BulkFailure]


class ExecutionSummary(_Answer):
    execution_id: str
    run_id: str
    status: ExecutionStatus
    started_at: datetime | None
    closed_at: datetime | None
    definition_id: str | None
    team_id: str
    event_id: str | None
    source: str | None
    trigger: TriggerKind
    retry_of: str | None = Field(description="A retry: the execution it repeats.")
    links: Links


class Execution(ExecutionSummary):
    definition_version: int | None
    error: str | None
    steps: dict[str, StepState]
    state_source: Literal["query", "result", "history"]
    state_note: str | None
    temporal_ui_url: str | None


class ExecutionList(_Answer):
    items: list[ExecutionSummary]
    next_cursor: Cursor


class HistoryEvent(_Answer):
    """A step-level event of a run; only step events have `step`, `compensation` and `attempt`,
    and approval events (`approval_accepted`, `approval_completed`) `step`, `decision`, `by` and
    `comment`."""

    id: int
    time: datetime
    type: str
    step: str | None = None
    compensation: bool = False
    attempt: int | None = None
    error: str | None = None
    signal: str | None = None
    decision: Literal["approve", "reject"] | None = None
    by: str | None = Field(None, description="Approval events: the name of the token that decided.")
    comment: str | None = None


class History(_Answer):
    execution_id: str
    run_id: str
    events: list[HistoryEvent]


class CancelRequested(_Answer):
    execution_id: str
    run_id: str
    status: Literal["cancel_requested"]


# --- agents, runners, explain, the document -----------------------------------------------------


class Agent(_Answer):
    """An agent as callers may see it: what runs where, never its environment or working directory."""

    name: str
    runner: str
    pool: str
    command: list[str]
    description: str | None
    timeout_s: float
    teams: list[str] | None = Field(
        None, description="Operator tokens only: the teams it is limited to (null: every team)."
    )


class AgentList(_Answer):
    items: list[Agent]


class RunnerPool(PoolStatus):
    """A runner pool, the runner kinds its agents use, and whether a worker polls it now."""


class RunnerList(_Answer):
    items: list[RunnerPool]


class EventSummary(_Answer):
    """The attributes of an explained event that decide what it starts."""

    id: str
    type: str
    source: str
    subject: str | None
    dedupekey: str
    resolves: str | None


class DefinitionExplanation(_Answer):
    definition: str
    version: int
    matches: bool
    reason: str | None = Field(description="The first condition that failed.")
    workflow_id: str | None
    on_resolved: str | None
    input: dict[str, Any] | None
    flow_control: dict[str, Any] | None = Field(
        description="The flow control it would meet: its lane's key, limit and mode, and its priority."
    )


class EventExplanation(_Answer):
    event: EventSummary
    definitions: list[DefinitionExplanation]


class Explanations(_Answer):
    events: list[EventExplanation]


# --- events and what became of them -------------------------------------------------------------


class EventHops(_Answer):
    """When each hop happened: Kafka took the event from the gateway, the triggers read it, and
    had started (or dead-lettered) all it matched."""

    accepted_at: datetime
    consumed_at: datetime | None
    decided_at: datetime | None


class EventDecision(_Answer):
    """One definition of the caller's team(s), and what the event meant for it."""

    definition_id: str
    version: int = Field(description="The version in force when the event was decided.")
    team: str
    matched: bool
    reason: str | None = Field(
        description="Not matched: the first condition that failed (of each trigger). Dead-lettered: why."
    )
    outcome: DecisionOutcome | None = Field(
        description="What came of a match: started, existing (a run for this occurrence was already there), "
        "signalled, cancelled, already ended, ignored, or dead-lettered."
    )
    execution_id: str | None
    links: Links


class EventRecord(_Answer):
    """An event as received, when each hop happened, and per definition what it started or why not."""

    id: str
    status: Literal["decided", "in_flight"] = Field(
        description="in_flight: accepted, and not yet decided by the triggers (only the gateway that "
        "accepted it knows it then); decided: the triggers have handled it."
    )
    source: str = Field(description="The configured source it came in through.")
    type: str | None = Field(description="Its CloudEvents type; null in flight.")
    subject: str | None
    event: dict[str, Any] | None = Field(
        description="The CloudEvent as the triggers read it (attributes, data, extensions); null in flight."
    )
    data_omitted: int | None = Field(
        None,
        description="Set when the event's data was too large to keep with its decision: its size in bytes. The "
        "data is then {} here, and the definitions it did not match are not evaluated; the data stays in the "
        "Kafka record the event was read from.",
    )
    headers: dict[str, Any] | None = Field(description="The request headers its source keeps, if any.")
    hops: EventHops
    replayed: bool = Field(description="A DLQ replay decided it again for the definitions it concerned.")
    decisions: list[EventDecision]
    links: Links


class EventListItem(_Answer):
    id: str
    source: str
    type: str
    subject: str | None
    accepted_at: datetime
    decided_at: datetime
    matched: bool = Field(description="Whether a definition the caller may see matched it.")
    links: Links


class EventList(_Answer):
    items: list[EventListItem]
    next_cursor: Cursor


# --- flow control -------------------------------------------------------------------------------


class Lane(_Answer):
    """A flow-control lane of a definition: one key's runs, what waits for its turn, what it
    skipped or dropped lately."""

    key: str
    limit: int | None = Field(description="Runs at once; null: no concurrency limit (a throttle only).")
    mode: str
    throttle: dict[str, Any] | None = Field(
        description="At most `limit` starts per `period_s`, up to `burst` more at once after a quiet time; "
        "`until`: when the next start is allowed while the throttle holds one back."
    )
    running: list[str]
    queued: list[str] = Field(description="In the order they will start: priority, then arrival.")
    skipped: list[str]
    dropped: list[str] = Field(description="Waiting events whose alert resolved before their turn.")
    replaced: list[str] = Field(description="Waiting events a newer one replaced (replace_queued, cancel_running).")
    cancelled: list[str] = Field(description="Runs cancelled for a newer event (cancel_running).")
    collecting: list[str] = Field(description="Events being collected for one debounced or batched run.")
    note: str | None = Field(description="Set when the lane did not answer (no worker polls): lists are empty.")


class LaneList(_Answer):
    items: list[Lane]


# --- dead letters -------------------------------------------------------------------------------


class DeadLetter(_Answer):
    """A record the triggers dead-lettered (for one definition, or for itself), however often."""

    id: str
    reason: str = Field(description="Why, as the latest time it was dead-lettered says.")
    topic: str = Field(description="The topic it was read from.")
    partition: int
    offset: int
    definition_id: str | None = Field(description="The definition it failed for; null: the record itself failed.")
    version: int | None
    team: str | None = Field(description="The definition's team, where there is one.")
    event_id: str | None
    source: str | None
    type: str | None
    first_seen: datetime
    last_seen: datetime
    times: int = Field(description="How often it was dead-lettered (again after a replay that failed again).")


class DeadLetterList(_Answer):
    items: list[DeadLetter]
    next_cursor: Cursor


class DlqReplayRequest(_Answer):
    """Which dead letters to replay: by id, or by the filters of `GET /dlq`."""

    ids: list[str] | None = Field(None, description="Dead letter ids; leave out to select by `filter`.")
    filter: dict[str, str] = Field(default_factory=dict, description="The query parameters of GET /dlq.")
    dry_run: bool = Field(False, description="Only count what would be replayed.")


class DlqReplayed(_Answer):
    matched: int
    dry_run: bool
    selected: list[str] = Field(
        description="The ids of the dead letters the request selects (a dry run too), newest first."
    )
    replayed: list[str] = Field(description="The ids of the dead letters re-published.")


# --- audit --------------------------------------------------------------------------------------


class AuditEntry(_Answer):
    """One write through the API: who, when, what, and how it ended."""

    id: str
    at: datetime
    actor: str = Field(description="The token's name.")
    team: str = Field(description="The token's team (`*`: an operator).")
    action: str = Field(description="e.g. definition.create, run.start, run.retry, runs.cancel, dlq.replay.")
    method: str
    path: str
    target: dict[str, str] = Field(description="The ids the URL names.")
    status: int
    outcome: Literal["succeeded", "refused", "failed"] = Field(description="2xx, 4xx, 5xx.")
    detail: str | None = Field(description="Why it was refused or failed.")
    details: dict[str, Any] = Field(description="What it did: the version written, the runs started, ...")


class AuditList(_Answer):
    items: list[AuditEntry]
    next_cursor: Cursor


# --- overview -----------------------------------------------------------------------------------


class EventRate(_Answer):
    """The events the triggers decided lately that the caller may see."""

    per_second: float = Field(description="Decided in the last minute, per second.")
    last_minute: int
    last_5_minutes: int


class RunCounts(_Answer):
    """The caller's executions that Temporal's visibility holds, by status."""

    by_status: dict[ExecutionStatus, int] = Field(description="Every status, 0 included.")
    failed_last_hour: int = Field(description="Executions that failed in the last hour.")


class DlqSize(_Answer):
    size: int = Field(description="The dead letters the caller may see.")
    last_hour: int = Field(description="Of those, dead-lettered (first or again) in the last hour.")


class PartitionLag(_Answer):
    topic: str
    partition: int
    end_offset: int
    committed_offset: int | None = Field(description="Null: the group has committed nothing on it yet.")
    lag: int = Field(
        description="Records not yet committed (a transaction's commit marker after the last record counts as one)."
    )


class GroupLag(_Answer):
    group: str
    lag: int
    partitions: list[PartitionLag]


class ConsumerLag(_Answer):
    """What the triggers have still to read: each consumer group with offsets committed on the
    events topic (an operator: on every topic it reads; a team token: on the events topic)."""

    lag: int = Field(description="The largest lag of those groups.")
    groups: list[GroupLag]


class PoolsPolled(_Answer):
    pools: list[RunnerPool]
    with_pollers: int
    total: int


class WaitingApprovals(_Answer):
    runs: int = Field(description="Runs waiting for a decision of the caller's team (an operator: of any team).")


class AttentionItem(_Answer):
    """Something to look at first, and where."""

    kind: Literal["failed_runs", "dlq_growth", "pool_without_pollers", "waiting_approvals"]
    message: str
    count: int
    links: Links


class Overview(_Answer):
    """What needs attention, then the numbers; a part that could not be read is null, and
    `unavailable` says why."""

    at: datetime
    team: str = Field(description="The caller's team (`*`: an operator, who sees every team).")
    attention: list[AttentionItem]
    events: EventRate | None
    runs: RunCounts | None
    dlq: DlqSize | None
    consumer_lag: ConsumerLag | None
    runners: PoolsPolled | None
    approvals: WaitingApprovals | None
    unavailable: dict[str, str] = Field(description="Each part that could not be read, and why.")


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This document."""


# --- approvals ----------------------------------------------------------------------------------


class ApprovalRequest(_Answer):
    """A decision on an approval step (docs/waiting-steps.md)."""

    decision: Literal["approve", "reject"]
    comment: str | None = Field(None, max_length=2000, description="Why; kept with the decision.")


class ExecutionApproval(_Answer):
    """An approval step of an execution: what it asks, who decides, the decisions so far."""

    execution_id: str
    step: str
    definition_id: str | None
    team_id: str = Field(description="The run's team (the approval's deciding team is `approval.team`).")
    approval: ApprovalState
    links: Links = Field(description="`execution`: the run; `decide`: where to POST the decision.")


class ApprovalList(_Answer):
    items: list[ExecutionApproval] = Field(description="Oldest request first within the page.")
    unanswered: list[str] = Field(
        description="Executions waiting for a decision of your team whose state no worker answered for now."
    )
    next_cursor: Cursor

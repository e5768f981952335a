"""What crosses Temporal: a run request (the pinned definition plus its input) and step results."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Event
from schemas.workflow import Action, WorkflowDefinition

__all__ = [
    "APPROVAL_PATH",
    "APPROVAL_TEAMS_ATTRIBUTE",
    "APPROVAL_UPDATE",
    "LANE_EVENT",
    "LANE_PING",
    "LANE_QUERY",
    "LANE_RESOLVE",
    "LANE_RUN_ENDED",
    "LANE_WORKFLOW",
    "RESOLVED_SIGNAL",
    "RUN_STEP",
    "STATE_QUERY",
    "WAITS_ARRIVAL",
    "WAITS_LEAVE",
    "WAITS_REGISTER",
    "WAITS_WORKFLOW",
    "WAIT_EVENT_SIGNAL",
    "WORKFLOW_NAME",
    "ApprovalDecision",
    "ApprovalState",
    "DecisionRequest",
    "LaneConfig",
    "LaneItem",
    "LaneResolve",
    "LaneState",
    "Resolved",
    "Route",
    "RunRequest",
    "RunState",
    "RunStatus",
    "StepRequest",
    "StepResult",
    "StepState",
    "StepStatus",
    "WaitArrival",
    "WaitBox",
    "WaitMatch",
    "WaitState",
    "Waiter",
]

# The names Temporal knows Hookline's parts by, in one place: the interpreter workflow, its
# signal and query, and the step activity.
WORKFLOW_NAME = "HooklineRun"
RESOLVED_SIGNAL = "resolved"
STATE_QUERY = "state"
RUN_STEP = "run_step"
#: The lane of a (definition, key) with flow control (docs/flow-control.md), its signals and query.
LANE_WORKFLOW = "HooklineLane"
LANE_EVENT = "event"
LANE_RESOLVE = "resolve"
LANE_QUERY = "lane"
#: A run a lane started tells the lane it has ended (its workflow id), so that a lane that
#: continued as new while the run ran frees its slot; the lane asks a run it holds no handle of
#: whether it still runs by signalling it (a closed run refuses the signal).
LANE_RUN_ENDED = "run_ended"
LANE_PING = "lane_ping"

#: Waiting steps (docs/waiting-steps.md): the update that decides an approval, the signal that
#: brings a run the event its `wait_for` waits for, and the mailbox workflow of one correlation key
#: (`hookline.runs.waits_id`) with its signals: an event arrives, a run waits, a run waits no more.
APPROVAL_UPDATE = "approval"
WAIT_EVENT_SIGNAL = "wait_event"
WAITS_WORKFLOW = "HooklineWaits"
WAITS_ARRIVAL = "arrival"
WAITS_REGISTER = "register"
WAITS_LEAVE = "leave"
#: The search attribute (a keyword list) of the teams that may decide a run's pending approvals.
APPROVAL_TEAMS_ATTRIBUTE = "HooklineApprovalTeams"
#: Where an approval is decided, below the gateway's address (`gateway.api` serves it).
APPROVAL_PATH = "/api/v1/executions/{execution_id}/approvals/{step}"

StepStatus = Literal[
    "pending", "running", "waiting", "succeeded", "failed", "rejected", "skipped", "cancelled", "compensated"
]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


class Route(BaseModel):
    """Where and how one action runs, resolved from the agent catalog when the run starts."""

    model_config = ConfigDict(frozen=True)

    queue: str
    timeout_s: float
    agent: str | None = None
    action: Action | None = None
    #: Run as a local activity in the interpreter's worker (`temporal.local_pools`), not on `queue`.
    local: bool = False


class Resolved(BaseModel):
    """The signal a run gets when what started it is over (its alert resolved). With `cancel`,
    a cancellation request follows; a run that has not started a step yet waits for it."""

    model_config = ConfigDict(frozen=True)

    event: Event
    action: Literal["signal", "cancel"] = "signal"


class RunRequest(BaseModel):
    """The workflow argument. The definition travels in it, so a run keeps the version it started with."""

    model_config = ConfigDict(frozen=True)

    definition_id: str
    definition_version: int
    definition: WorkflowDefinition
    input: dict[str, Any] = Field(default_factory=dict)
    event: Event | None = None
    #: A debounced or batched run's events, in arrival order (`event` is the last of them).
    events: list[Event] = Field(default_factory=list)
    team_id: str | None = None
    # step name → where its action runs; `compensations` likewise for `on_failure` actions.
    routes: dict[str, Route] = Field(default_factory=dict)
    compensations: dict[str, Route] = Field(default_factory=dict)
    #: The lane that started the run (flow control), which the run tells when it ends. Left out
    #: when None, so that a run request is what it was before the field (tests/replay compares).
    lane: str | None = Field(None, exclude_if=lambda lane: lane is None)
    #: What resolved the run's event before it started (a lane's queued event its trigger keeps,
    #: `resolved_while_queued: keep`): the run begins as if it had the `resolved` signal, so it
    #: cannot end (or start a step it should not) before hearing of it. Left out when None.
    resolved: Resolved | None = Field(None, exclude_if=lambda resolved: resolved is None)


class LaneConfig(BaseModel):
    """What a lane enforces; the first event's trigger sets it, and each later event's trigger
    updates it (a new definition version takes effect at the lane's next decision)."""

    model_config = ConfigDict(frozen=True)

    definition_id: str
    key: str
    #: Runs at once; None: no concurrency limit (a lane for its throttle only).
    limit: int | None = 1
    mode: Literal["queue", "skip", "cancel_running", "replace_queued"] = "queue"
    #: At most `throttle_limit` starts per `throttle_period_s` (None: no throttle).
    throttle_limit: int | None = None
    throttle_period_s: float | None = None
    #: Starts beyond `throttle_limit` allowed at once after a quiet time (a token bucket).
    throttle_burst: int = 0
    #: Events collected into one run: `debounce` (after `quiet_s` without one, or `max_wait_s`
    #: after the first) or `batch` (`max_events`, or `max_wait_s` after the first).
    collect: Literal["debounce", "batch"] | None = None
    quiet_s: float | None = None
    max_wait_s: float | None = None
    max_events: int | None = None


class LaneItem(BaseModel):
    """One event for a lane: the run it would start, under the id it would have started it."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    request: RunRequest
    priority: float = 0.0
    config: LaneConfig
    #: The run's search attributes (name → keyword), as a direct start would set them.
    attributes: dict[str, str] = Field(default_factory=dict)
    #: Its workflow task timeout (`temporal.local_task_timeout_s` for runs with local steps).
    task_timeout_s: float | None = None
    #: When the lane took it (the lane sets it): its queue wait is measured from here.
    arrived: datetime | None = None
    #: A debounced or batched run's: the run ids its events had, in the order of `request.events`
    #: (a resolution names one of them).
    members: list[str] = Field(default_factory=list)


class LaneResolve(BaseModel):
    """A resolving event for the run `run_id` of a lane: dropped from the queue if it still waits,
    passed on to the run if it runs."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    resolved: Resolved


class LaneState(BaseModel):
    """A lane now: its runs, what waits (in order) and what it skipped lately."""

    config: LaneConfig | None = None
    running: list[str] = Field(default_factory=list)
    queued: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    #: Waiting events a later one replaced (`replace_queued`, `cancel_running`), and runs the
    #: lane cancelled for a newer event (`cancel_running`).
    replaced: list[str] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)
    #: Start times within the throttle's period, carried over when the lane continues as new,
    #: and the throttle's token bucket (tokens left at a time; None: full).
    starts: list[datetime] = Field(default_factory=list)
    tokens: float | None = None
    tokens_at: datetime | None = None
    #: When the throttle lets the next run start (None: now, or there is none): why what waits waits.
    throttled_until: datetime | None = None
    #: The events being collected for a debounced or batched run (their own run ids); carried
    #: over whole, with when the first and the last came.
    collected: list[str] = Field(default_factory=list)
    collecting: list[LaneItem] = Field(default_factory=list)
    collecting_since: datetime | None = None
    collecting_last: datetime | None = None
    #: Carried over when the lane continues as new: the run ids it has seen lately.
    seen: list[str] = Field(default_factory=list)
    waiting: list[LaneItem] = Field(default_factory=list)
    #: Carried over with the runs that run on (`running`): of each debounced or batched one, its
    #: events not resolved yet, and which run each of those events went into.
    unresolved: dict[str, list[str]] = Field(default_factory=dict)
    holders: dict[str, str] = Field(default_factory=dict)


class StepRequest(BaseModel):
    """The activity argument: which agent or inline action runs, and the data it gets (never
    spliced into argv)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    step: str
    compensation: bool = False
    agent: str | None = None
    action: Action | None = None
    timeout_s: float | None = None
    input: Any = None
    event: Event | None = None
    #: A debounced or batched run's events.
    events: list[Event] = Field(default_factory=list)
    #: The run's team: an agent limited to other teams refuses the step. None: the default team.
    team_id: str | None = None


class StepResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    exit_code: int = 0
    output: str = ""
    output_truncated: bool = False
    attempt: int = 1
    # The output parsed as JSON when it is JSON: what later steps see as `steps.<name>.output`.
    data: Any = None
    # When the runner really ran it (the workflow only sees when it was scheduled and reported).
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ApprovalDecision(BaseModel):
    """One person's decision on an approval: who (the token's name and team), when, what, why."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["approve", "reject"]
    by: str
    team: str
    at: datetime
    comment: str | None = None


class DecisionRequest(BaseModel):
    """The approval update's argument: a decision and who takes it (the API's caller)."""

    model_config = ConfigDict(frozen=True)

    step: str
    decision: Literal["approve", "reject"]
    comment: str | None = None
    by: str
    team: str
    scopes: list[str] = Field(default_factory=list)
    operator: bool = False


class ApprovalState(BaseModel):
    """An approval step's request and its decisions, as the run holds them."""

    status: Literal["pending", "approved", "rejected", "failed", "resolved"] = "pending"
    #: No decision came within the timeout: `status` is what `on_timeout` made of it.
    timed_out: bool = False
    team: str
    scope: str = "execute"
    tokens: list[str] = Field(default_factory=list)
    message: str | None = None
    min_approvals: int = 1
    requested_at: datetime
    deadline: datetime | None = None
    on_timeout: str = "reject"
    decisions: list[ApprovalDecision] = Field(default_factory=list)
    #: Where to decide it, below the gateway's address.
    url: str


class WaitState(BaseModel):
    """A `wait_for` or `sleep` step's wait."""

    kind: Literal["wait_for", "sleep"]
    status: Literal["waiting", "matched", "timed_out", "resolved", "done"] = "waiting"
    since: datetime
    #: When it gives up (wait_for with a timeout) or wakes (sleep).
    until: datetime | None = None
    #: wait_for: the source and correlation key it waits for, and the event that ended it.
    source: str | None = None
    key: str | None = None
    event_id: str | None = None


class Waiter(BaseModel):
    """A run waiting at a mailbox: events that arrived at or after `since` are its."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    since: datetime
    #: When it stops waiting by itself (its timeout); None: until it says so or ends.
    until: datetime | None = None


class WaitArrival(BaseModel):
    """An event for a mailbox: when it was accepted, and how long to keep it for late waiters."""

    model_config = ConfigDict(frozen=True)

    event: Event
    at: datetime
    keep_s: float


class WaitMatch(BaseModel):
    """The event a run's `wait_for` step waits for, brought by its mailbox."""

    model_config = ConfigDict(frozen=True)

    step: str
    key: str
    event: Event
    at: datetime


class WaitBox(BaseModel):
    """The mailbox of one (definition, wait_for step, correlation key): its argument, carried
    whole when it continues as new."""

    definition_id: str
    step: str
    key: str
    waiters: list[Waiter] = Field(default_factory=list)
    events: list[WaitArrival] = Field(default_factory=list)
    #: Ids of the events it has had lately: a redelivered event is not brought twice.
    seen: list[str] = Field(default_factory=list)


class StepState(BaseModel):
    """`started_at`/`finished_at`: for a step that succeeded, when its last attempt ran on the
    runner; otherwise when the interpreter scheduled it and saw it end."""

    status: StepStatus = "pending"
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: str | None = None
    error: str | None = None
    compensation: Literal["succeeded", "failed"] | None = None
    compensation_error: str | None = None
    #: An approval step's request and decisions; a wait_for or sleep step's wait.
    approval: ApprovalState | None = None
    wait: WaitState | None = None


class RunState(BaseModel):
    definition_id: str
    definition_version: int
    status: RunStatus = "running"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    event_id: str | None = None
    resolved_by: str | None = None  # the id of the event that resolved what started the run
    error: str | None = None
    steps: dict[str, StepState] = Field(default_factory=dict)

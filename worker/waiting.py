"""Waiting steps (docs/waiting-steps.md): an approval waits for people's decisions, a `wait_for`
for an event, a `sleep` for a time. Deterministic like the rest of the interpreter: every wait is
a Temporal timer or condition, so it survives restarts of every component.

How each ends, and what the run makes of it (`Outcome.status`):

| step | ends with | status |
|---|---|---|
| approval | `min_approvals` approvals (or `on_timeout: approve`) | succeeded |
| approval | a rejection (or `on_timeout: reject`) | rejected: the steps after it without a `when` are skipped |
| approval | `on_timeout: fail` | failed |
| wait_for | the event (its output) | succeeded |
| wait_for | the timeout: `on_timeout: fail` / `succeed` (output null) | failed / succeeded |
| sleep | its time | succeeded |
| any | the run's alert resolved (`on_resolved: skip`, the default) | skipped |

An approval is decided exactly once: decisions come as a workflow Update whose validator refuses
one that comes too late, and whose handler applies it before any other update is validated (both
run in one step of the workflow's event loop), so of two at the same moment the first decides and
the second is refused with the first's decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from hookline.runs import DEFAULT_TEAM, waits_id
    from hookline.temporal import SA_DEFINITION, SA_TEAM
    from schemas.expressions import ExpressionError, render
    from schemas.run import (
        APPROVAL_PATH,
        APPROVAL_TEAMS_ATTRIBUTE,
        WAITS_LEAVE,
        WAITS_REGISTER,
        WAITS_WORKFLOW,
        ApprovalDecision,
        ApprovalState,
        DecisionRequest,
        RunRequest,
        StepState,
        WaitBox,
        Waiter,
        WaitMatch,
        WaitState,
    )
    from schemas.workflow import Approval, Sleep, Step, WaitFor

__all__ = ["Outcome", "Waiting"]

_APPROVAL_TEAMS = SearchAttributeKey.for_keyword_list(APPROVAL_TEAMS_ATTRIBUTE)
#: What an approval's `on_timeout` makes of it.
_ON_TIMEOUT: dict[str, Literal["approved", "rejected", "failed"]] = {
    "reject": "rejected",
    "approve": "approved",
    "fail": "failed",
}
#: Attempts to reach a step's mailbox (each may find it just ending, and start it again).
_JOIN_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a waiting step ended: its status, its output, and why it failed."""

    status: Literal["succeeded", "failed", "rejected", "skipped"]
    output: Any = None
    summary: str | None = None
    error: str | None = None


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _until(value: Any) -> datetime:
    """A `sleep.until` value: epoch seconds or ISO 8601 (UTC when it names no zone)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ExpressionError(f"sleep.until gave {value[:80]!r}, not an ISO 8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise ExpressionError(f"sleep.until must give a time (ISO 8601 or epoch seconds), got {type(value).__name__}")


class Waiting:
    """The waiting steps of one run, and what reaches them from outside: decisions (the
    approval update) and events (the mailbox's signal). `resolved` says whether the alert that
    started the run has resolved."""

    def __init__(self, request: RunRequest, states: dict[str, StepState], resolved: Callable[[], bool]) -> None:
        self._request = request
        self._states = states
        self._resolved = resolved
        self._steps = {s.name: s for s in request.definition.all_steps() if s.waits is not None}
        self._team = request.team_id or DEFAULT_TEAM
        #: The correlation key each waiting `wait_for` step waits for, and the events brought to them.
        self._keys: dict[str, str] = {}
        self._matches: dict[str, WaitMatch] = {}

    def links(self) -> dict[str, Any]:
        """What expressions see as `approvals`: each approval step's URL (below the gateway's
        address) and status, so a step before it can tell people where to decide."""
        run_id = quote(workflow.info().workflow_id, safe=":")
        return {
            name: {
                "url": APPROVAL_PATH.format(execution_id=run_id, step=quote(name, safe="")),
                "status": (state.approval.status if (state := self._states[name]).approval else "pending"),
            }
            for name, step in self._steps.items()
            if step.approval is not None
        }

    async def run(self, step: Step, context: dict[str, Any]) -> Outcome:
        spec = step.waits
        if spec is not None and spec.on_resolved == "skip" and self._resolved():
            return Outcome("skipped", {"status": "resolved"}, "the alert resolved before the wait began")
        try:
            if isinstance(spec, Approval):
                return await self._approval(step.name, spec, context)
            if isinstance(spec, WaitFor):
                return await self._wait_for(step.name, spec, context)
            if isinstance(spec, Sleep):
                return await self._sleep(step.name, spec, context)
        except (ExpressionError, ApplicationError) as exc:
            return Outcome("failed", error=str(exc))
        return Outcome("failed", error=f"step {step.name!r} is not a waiting step")

    def _ends(self, spec: Approval | WaitFor | Sleep) -> bool:
        return spec.on_resolved == "skip" and self._resolved()

    # --- approval ---------------------------------------------------------------------------

    async def _approval(self, name: str, spec: Approval, context: dict[str, Any]) -> Outcome:
        message = render(spec.message, context) if spec.message is not None else None
        now = workflow.now()
        state = self._states[name]
        approval = state.approval = ApprovalState(
            team=spec.team or self._team,
            scope=spec.scope,
            tokens=list(spec.tokens),
            message=message if message is None or isinstance(message, str) else str(message),
            min_approvals=spec.min_approvals,
            requested_at=now,
            deadline=now + timedelta(seconds=spec.timeout) if spec.timeout is not None else None,
            on_timeout=spec.on_timeout,
            url=self.links()[name]["url"],
        )
        state.status, state.started_at = "waiting", now
        self._show_pending()
        try:
            await workflow.wait_condition(
                lambda: approval.status != "pending" or self._ends(spec), timeout=_seconds(spec.timeout)
            )
        except TimeoutError:
            if approval.status == "pending":
                approval.timed_out = True
                approval.status = _ON_TIMEOUT[spec.on_timeout]
        except asyncio.CancelledError:
            state.status = "cancelled"  # the run is being cancelled: no longer pending for anyone
            self._show_pending()
            raise
        if approval.status == "pending":
            approval.status = "resolved"
        self._show_pending()
        output = {
            "approved": approval.status == "approved",
            "status": approval.status,
            "timed_out": approval.timed_out,
            "decisions": [d.model_dump(mode="json") for d in approval.decisions],
        }
        by = ", ".join(d.by for d in approval.decisions) or "nobody"
        if approval.status == "approved":
            return Outcome("succeeded", output, "approved on timeout" if approval.timed_out else f"approved by {by}")
        if approval.status == "rejected":
            why = "no decision in time" if approval.timed_out else f"rejected by {by}"
            return Outcome("rejected", output, why)
        if approval.status == "failed":
            return Outcome("failed", output, error=f"no decision within {spec.timeout:g}s")
        return Outcome("skipped", output, "the alert resolved: no decision needed")

    def _show_pending(self) -> None:
        """The search attribute `GET /approvals` finds runs by: the teams of its pending approvals."""
        teams = sorted(
            {
                s.approval.team
                for s in self._states.values()
                if s.approval is not None and s.approval.status == "pending" and s.status == "waiting"
            }
        )
        value = _APPROVAL_TEAMS.value_set(teams) if teams else _APPROVAL_TEAMS.value_unset()
        workflow.upsert_search_attributes([value])

    def check(self, request: DecisionRequest) -> ApprovalState:
        """The update's validator: the approval `request` decides, if it may; raises
        `ApplicationError` typed UnknownApproval, NotAllowed, NotWaiting or AlreadyDecided (with
        the decisions so far as details)."""
        step = self._steps.get(request.step)
        if step is None or step.approval is None:
            raise ApplicationError(f"the run has no approval step {request.step!r}", type="UnknownApproval")
        refusal = step.approval.refusal(self._team, request.by, request.team, request.scopes, operator=request.operator)
        if refusal is not None:
            raise ApplicationError(refusal, type="NotAllowed")
        approval = self._states[request.step].approval
        if approval is None:
            status = self._states[request.step].status
            raise ApplicationError(
                f"approval {request.step!r} is not waiting for a decision ({status})", type="NotWaiting"
            )
        if approval.status != "pending":
            raise ApplicationError(
                f"approval {request.step!r} is {approval.status} already",
                approval.model_dump(mode="json"),
                type="AlreadyDecided",
            )
        if any(d.by == request.by for d in approval.decisions):
            raise ApplicationError(
                f"{request.by} has decided approval {request.step!r} already",
                approval.model_dump(mode="json"),
                type="AlreadyDecided",
            )
        return approval

    def decide(self, request: DecisionRequest) -> ApprovalState:
        """The update's handler: apply the decision (checked again: a replayed update is not validated)."""
        approval = self.check(request)
        approval.decisions.append(
            ApprovalDecision(
                decision=request.decision, by=request.by, team=request.team, at=workflow.now(), comment=request.comment
            )
        )
        approvals = sum(1 for d in approval.decisions if d.decision == "approve")
        if request.decision == "reject":
            approval.status = "rejected"
        elif approvals >= approval.min_approvals:
            approval.status = "approved"
        return approval

    # --- wait_for ---------------------------------------------------------------------------

    async def _wait_for(self, name: str, spec: WaitFor, context: dict[str, Any]) -> Outcome:
        key = spec.run_key(context)
        now = workflow.now()
        until = now + timedelta(seconds=spec.timeout) if spec.timeout is not None else None
        state = self._states[name]
        wait = state.wait = WaitState(kind="wait_for", since=now, until=until, source=spec.source_name, key=key)
        state.status, state.started_at = "waiting", now
        self._keys[name] = key
        box = waits_id(self._request.definition_id, name, key)
        waiter = Waiter(run_id=workflow.info().workflow_id, since=now - timedelta(seconds=spec.lookback), until=until)
        try:
            await self._join(box, WaitBox(definition_id=self._request.definition_id, step=name, key=key), waiter)
            await workflow.wait_condition(
                lambda: name in self._matches or self._ends(spec), timeout=_seconds(spec.timeout)
            )
        except TimeoutError:
            pass
        finally:
            del self._keys[name]
        match = self._matches.get(name)
        if match is not None:
            wait.status, wait.event_id = "matched", match.event.id
            return Outcome("succeeded", match.event.model_dump(mode="json"), f"event {match.event.id}")
        await self._leave(box, waiter.run_id)
        if self._ends(spec):
            wait.status = "resolved"
            return Outcome("skipped", None, "the alert resolved: no event needed")
        wait.status = "timed_out"
        if spec.on_timeout == "succeed":
            return Outcome("succeeded", None, "no event in time")
        return Outcome("failed", error=f"no matching event within {spec.timeout:g}s")

    def matched(self, match: WaitMatch) -> None:
        """The mailbox's signal: the event a `wait_for` step waits for. Ignored unless that step
        waits now, for that key (a run that waits no more ignores what comes late)."""
        if self._keys.get(match.step) == match.key and match.step not in self._matches:
            self._matches[match.step] = match

    async def _join(self, box_id: str, box: WaitBox, waiter: Waiter) -> None:
        """Wait at the mailbox: start it with this waiter, or, where it runs, tell it."""
        attributes = TypedSearchAttributes(
            [SearchAttributePair(SA_DEFINITION, self._request.definition_id), SearchAttributePair(SA_TEAM, self._team)]
        )
        for _ in range(_JOIN_ATTEMPTS):
            try:
                await workflow.start_child_workflow(
                    WAITS_WORKFLOW,
                    box.model_copy(update={"waiters": [waiter]}),
                    id=box_id,
                    task_queue=workflow.info().task_queue,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    search_attributes=attributes,
                )
                return
            except WorkflowAlreadyStartedError:
                pass
            try:
                await workflow.get_external_workflow_handle(box_id).signal(WAITS_REGISTER, waiter)
                return
            except Exception:  # noqa: S112 - it ended between the two: start it again
                continue
        raise ApplicationError(f"cannot reach the mailbox {box_id}", type="WaitUnreachable")

    async def _leave(self, box_id: str, run_id: str) -> None:
        try:
            await workflow.get_external_workflow_handle(box_id).signal(WAITS_LEAVE, run_id)
        except Exception:  # noqa: S110 - it ended: nobody to tell (it drops a waiter past its time anyway)
            pass

    # --- sleep ------------------------------------------------------------------------------

    async def _sleep(self, name: str, spec: Sleep, context: dict[str, Any]) -> Outcome:
        now = workflow.now()
        wake = now + timedelta(seconds=spec.for_) if spec.for_ is not None else _until(render(spec.until, context))
        state = self._states[name]
        wait = state.wait = WaitState(kind="sleep", since=now, until=wake)
        state.status, state.started_at = "waiting", now
        if wake > now:
            try:
                await workflow.wait_condition(lambda: self._ends(spec), timeout=wake - now)
            except TimeoutError:
                pass
        if self._ends(spec) and workflow.now() < wake:
            wait.status = "resolved"
            return Outcome("skipped", None, "the alert resolved: woken early")
        wait.status = "done"
        return Outcome("succeeded", {"slept_until": wake.isoformat()}, f"slept until {wake.isoformat()}")

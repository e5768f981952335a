"""Record the Temporal histories of runs of every shape, as fixtures for test_replay_histories.py.

    .venv/bin/python -m tests.replay.record                      # every shape
    .venv/bin/python -m tests.replay.record sequential lane-batch  # some of them

Each shape is a definition run for real: a Temporal dev server of its own (in memory), the
worker as `hookline worker` builds it (interpreter, lanes, the shell pool and a local pool),
steps that are small real programs, events sent the way the triggers send them (their own
`WorkflowStarter`: starts, signal-with-starts of resolutions, lanes; their `WaitDelivery`: events
brought to `wait_for` mailboxes) and decisions the way the API takes them (the approval Update).
Every workflow of a shape, lanes, their child runs and mailboxes too, is written once closed to
tests/data/histories/<hookline version>/<shape>/<kind>-<n>.json (`WorkflowHistory.to_json`;
kinds: run, lane, waits).

Record with the version that is released (its workflows are the ones running when the next
version's workers take over), and keep the folders of older versions while runs they started
may still be open: the replay test replays all of them against the current interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from hookline.definitions import StoredDefinition
from hookline.logging import configure_logging
from hookline.runs import DEFAULT_TEAM, build_request, manual_run_id, start_run, waits_id
from hookline.settings import LogSettings, TemporalSettings
from hookline.stack import TemporalServer, free_port
from hookline.temporal import SA_DEFINITION, connect, query_literal
from schemas.agents import Agent, AgentCatalog
from schemas.events import Event
from schemas.run import APPROVAL_UPDATE, WAITS_WORKFLOW, ApprovalState, DecisionRequest
from schemas.workflow import parse_definition
from triggers.starter import WorkflowStarter
from triggers.waits import WaitDelivery, WaitIndex
from worker.app import build_workers
from worker.settings import WorkerOptions, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "data" / "histories"
#: Steps of agents in this pool run as local activities (temporal.local_pools).
LOCAL_POOL = "local"

#: Small real programs; `flaky` fails twice, then succeeds (it counts in its working directory).
SCRIPTS: dict[str, list[str]] = {
    "ok": ["sh", "-c", "echo ok"],
    "json": ["python3", "-c", "import json, sys; d = json.load(sys.stdin); print(json.dumps({'got': d['input']}))"],
    "fail": ["sh", "-c", "echo boom; exit 3"],
    "flaky": [
        "sh",
        "-c",
        'f="tries-$HOOKLINE_STEP"; n=$(cat "$f" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$f"; [ $n -ge 3 ]',
    ],
    "short": ["sleep", "0.5"],
    "hold": ["sleep", "2"],
    "slow": ["sleep", "30"],
    "undo": ["sh", "-c", "echo undone"],
}


@dataclass
class Recording:
    """What a shape needs: the client, the starter, a way to make a stored definition."""

    client: Client
    settings: TemporalSettings
    agents: AgentCatalog
    starter: WorkflowStarter
    waits: WaitDelivery
    definitions: list[str] = field(default_factory=list)

    def define(self, shape: str, doc: dict[str, Any]) -> StoredDefinition:
        """`doc` under a name of the shape's own (its workflows are listed by it afterwards)."""
        doc = {**doc, "name": f"replay {shape} {uuid.uuid4().hex[:8]}"}
        definition = parse_definition(doc, agents=self.agents.agents.keys())
        self.definitions.append(definition.id)
        return StoredDefinition(
            id=definition.id,
            version=1,
            digest="",
            document=doc,
            definition=definition,
            created_at=datetime.now(UTC).isoformat(),
            author="tests/replay/record.py",
        )

    async def manual(self, stored: StoredDefinition, input: dict[str, Any] | None = None) -> WorkflowHandle[Any, Any]:
        request = build_request(stored, self.agents, self.settings, input=input)
        handle, _ = await start_run(self.client, self.settings, request, manual_run_id(stored.id))
        return handle

    async def fire(self, stored: StoredDefinition, event: Event) -> str:
        """The event's run, as the triggers start it (to its lane when the trigger has flow control)."""
        (trigger,) = stored.definition.triggers
        if trigger.flow_controlled:
            run_id, _ = await self.starter.enqueue(event, stored, trigger)
            return run_id
        run_id, _ = await self.starter.start(event, stored, trigger)
        return run_id

    async def resolve(self, stored: StoredDefinition, event: Event) -> None:
        (trigger,) = stored.definition.triggers
        await self.starter.resolve(event, stored, trigger)

    async def deliver(self, stored: StoredDefinition, event: Event) -> str:
        """The event brought to the mailboxes of the `wait_for` steps it is for, as the triggers
        bring it (accepted now); the mailbox's id."""
        (found,) = WaitIndex([stored]).waiting_for(event)
        return await self.waits.deliver(event, datetime.now(UTC), *found)

    async def decide(self, workflow_id: str, step: str, decision: str, by: str, comment: str | None = None) -> None:
        """A decision through the approval update, as the API takes it for a token of the run's team."""
        request = DecisionRequest(
            step=step, decision=decision, comment=comment, by=by, team=DEFAULT_TEAM, scopes=["execute"]
        )
        await self.client.get_workflow_handle(workflow_id).execute_update(
            APPROVAL_UPDATE, request, result_type=ApprovalState
        )

    async def running(self, workflow_id: str, timeout: float = 30.0) -> None:
        """Until the workflow `workflow_id` exists (a mailbox its run started)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.client.get_workflow_handle(workflow_id).describe()
                return
            except RPCError:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{workflow_id} did not start") from None
                await asyncio.sleep(0.1)

    async def step_status(self, workflow_id: str, step: str, status: str, timeout: float = 30.0) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                state = await handle.query("state")
            except Exception:  # not started yet, or no worker answered in time
                state = None
            if state and state["steps"][step]["status"] == status:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{workflow_id}: step {step} did not become {status}")


def alert(service: str, key: str | None = None, resolves: str | None = None) -> Event:
    """An event as the alertmanager source makes it: its labels, a dedupe key, maybe what it resolves."""
    key = key or uuid.uuid4().hex
    return Event(
        id=str(uuid.uuid4()),
        source="alertmanager",
        type="dev.hookline.alertmanager.resolved" if resolves else "dev.hookline.alertmanager.firing",
        dedupekey=key,
        hooklinesource="alertmanager",
        resolves=resolves,
        data={"status": "resolved" if resolves else "firing", "labels": {"service": service, "alertname": "Down"}},
    )


def webhook(**trigger: Any) -> dict[str, Any]:
    return {"type": "webhook", "source": "alertmanager", **trigger}


# ---------------------------------------------------------------------------------------------
# The shapes. Each drives its runs to the point it shows; the recorder then waits for every
# workflow of the shape to close.

Shape = Callable[[Recording, str], Awaitable[None]]


async def sequential(r: Recording, shape: str) -> None:
    """Steps one after the other; `with` from an earlier step's output; a `when` that skips."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "first", "agent": "ok"},
                {"name": "second", "agent": "json", "with": {"from": "${{ steps.first.output }}"}},
                {"name": "skipped", "agent": "ok", "when": "steps.first.status == 'failed'"},
                {"name": "last", "agent": "json", "with": {"input": "${{ input }}"}},
            ]
        },
    )
    await r.manual(stored, {"version": "v1"})


async def parallel(r: Recording, shape: str) -> None:
    """A top-level `parallel` list, one failing with continue_on_error."""
    stored = r.define(
        shape,
        {
            "parallel": [
                {"name": "a", "agent": "ok"},
                {"name": "b", "agent": "short"},
                {"name": "c", "agent": "fail", "retries": 1, "continue_on_error": True},
            ]
        },
    )
    await r.manual(stored)


async def parallel_failure(r: Recording, shape: str) -> None:
    """A failing branch cancels its running sibling; the completed one is compensated."""
    stored = r.define(
        shape,
        {
            "parallel": [
                {"name": "done", "agent": "ok", "on_failure": {"agent": "undo"}},
                {"name": "long", "agent": "slow"},
                {"name": "broken", "agent": "fail", "retries": 1, "requires": ["done"]},
            ]
        },
    )
    await r.manual(stored)


async def requires(r: Recording, shape: str) -> None:
    """A diamond of `requires`: a, then b and c together, then d."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "a", "agent": "ok"},
                {"name": "b", "agent": "short", "requires": ["a"]},
                {"name": "c", "agent": "ok", "requires": ["a"]},
                {"name": "d", "agent": "json", "requires": ["b", "c"]},
            ]
        },
    )
    await r.manual(stored)


async def retries(r: Recording, shape: str) -> None:
    """A step that succeeds on its third attempt, and one that spends its attempts and fails the run."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "flaky", "agent": "flaky", "retries": {"max_attempts": 5, "initial_interval": "100ms"}},
                {"name": "spent", "agent": "fail", "retries": {"max_attempts": 2, "initial_interval": "100ms"}},
            ]
        },
    )
    await r.manual(stored)


async def compensation(r: Recording, shape: str) -> None:
    """A failing step compensates the completed ones in reverse order of completion."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "reserve", "agent": "ok", "on_failure": {"agent": "undo"}},
                {"name": "no-undo", "agent": "ok"},
                {"name": "charge", "agent": "ok", "on_failure": {"agent": "undo", "with": {"what": "charge"}}},
                {"name": "ship", "agent": "fail", "retries": 1, "on_failure": {"agent": "undo"}},
            ]
        },
    )
    await r.manual(stored)


async def cancellation(r: Recording, shape: str) -> None:
    """A run cancelled while a step runs: the step is cancelled, the completed one compensated."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "prepare", "agent": "ok", "on_failure": {"agent": "undo"}},
                {"name": "wait", "agent": "slow"},
            ]
        },
    )
    handle = await r.manual(stored)
    await r.step_status(handle.id, "wait", "running")
    await handle.cancel()


async def timeout(r: Recording, shape: str) -> None:
    """The definition's `timeout` ends a run whose step runs too long."""
    stored = r.define(shape, {"timeout": "2s", "steps": [{"name": "too-long", "agent": "slow"}]})
    await r.manual(stored)


async def inline_action(r: Recording, shape: str) -> None:
    """An inline `action` instead of an agent."""
    stored = r.define(
        shape,
        {"steps": [{"name": "inline", "action": {"runner": "shell", "command": ["sh", "-c", "echo inline"]}}]},
    )
    await r.manual(stored)


async def local_steps(r: Recording, shape: str) -> None:
    """Steps of a local pool (local activities, markers in the history), one retried, one failing."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "local-ok", "agent": "local-ok", "on_failure": {"agent": "local-ok"}},
                {
                    "name": "local-flaky",
                    "agent": "local-flaky",
                    "retries": {"max_attempts": 4, "initial_interval": "100ms"},
                },
                {"name": "local-fail", "agent": "local-fail", "retries": 1},
            ]
        },
    )
    await r.manual(stored)


async def event_run(r: Recording, shape: str) -> None:
    """A run started by an event, and the same event again (it starts nothing)."""
    stored = r.define(shape, {"trigger": webhook(), "steps": [{"name": "handle", "agent": "json"}]})
    event = alert("api")
    await r.fire(stored, event)
    await r.fire(stored, event)


async def resolved_signal(r: Recording, shape: str) -> None:
    """The alert resolves while its run runs (on_resolved: signal): a later step sees `resolved`."""
    stored = r.define(
        shape,
        {
            "trigger": webhook(on_resolved="signal"),
            "steps": [
                {"name": "investigate", "agent": "hold"},
                {"name": "close", "agent": "ok", "when": "resolved"},
            ],
        },
    )
    firing = alert("api")
    run_id = await r.fire(stored, firing)
    await r.step_status(run_id, "investigate", "running")
    await r.resolve(stored, alert("api", key=uuid.uuid4().hex, resolves=firing.dedupekey))


async def resolved_cancel(r: Recording, shape: str) -> None:
    """on_resolved: cancel while the run runs: the signal, then the cancellation and compensation."""
    stored = r.define(
        shape,
        {
            "trigger": webhook(on_resolved="cancel"),
            "steps": [
                {"name": "page", "agent": "ok", "on_failure": {"agent": "undo"}},
                {"name": "remediate", "agent": "slow"},
            ],
        },
    )
    firing = alert("db")
    run_id = await r.fire(stored, firing)
    await r.step_status(run_id, "remediate", "running")
    await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=firing.dedupekey))


async def resolved_first(r: Recording, shape: str) -> None:
    """The resolution overtakes its firing alert: the run is created with the signal in it and
    cancelled before any step; the firing alert then finds it and starts nothing."""
    stored = r.define(shape, {"trigger": webhook(on_resolved="cancel"), "steps": [{"name": "never", "agent": "ok"}]})
    firing = alert("cache")
    await r.resolve(stored, alert("cache", key=uuid.uuid4().hex, resolves=firing.dedupekey))
    await r.fire(stored, firing)


#: Trigger fields `_lane` sets as they are (the others are flow control given the lane's key).
_PLAIN = ("priority", "on_resolved", "resolved_while_queued")


def _lane(shape: str, r: Recording, agent: str, **flow: Any) -> StoredDefinition:
    key = "${{ labels.service }}"
    trigger = webhook(**{name: {"key": key, **spec} for name, spec in flow.items() if name not in _PLAIN})
    trigger.update({name: flow[name] for name in _PLAIN if name in flow})
    return r.define(shape, {"trigger": trigger, "steps": [{"name": "fix", "agent": agent}]})


async def lane_queue(r: Recording, shape: str) -> None:
    """concurrency limit 1 (queue) with priority: runs of one key one at a time, lowest first."""
    stored = _lane(shape, r, "short", concurrency={"limit": 1}, priority="${{ data.priority }}")
    for priority in (5, 1, 3):
        event = alert("db")
        event = event.model_copy(update={"data": {**event.data, "priority": priority}})
        await r.fire(stored, event)


async def lane_skip(r: Recording, shape: str) -> None:
    """mode skip: an event while the key's run runs starts nothing."""
    stored = _lane(shape, r, "hold", concurrency={"limit": 1, "mode": "skip"})
    await r.fire(stored, alert("db"))
    await r.fire(stored, alert("db"))


async def lane_replace_queued(r: Recording, shape: str) -> None:
    """mode replace_queued: the newest waiting event replaces the one that waited."""
    stored = _lane(shape, r, "hold", concurrency={"limit": 1, "mode": "replace_queued"})
    first = await r.fire(stored, alert("db"))
    await r.step_status(first, "fix", "running")
    for _ in range(2):
        await r.fire(stored, alert("db"))


async def lane_cancel_running(r: Recording, shape: str) -> None:
    """mode cancel_running: a newer event cancels the running run (compensated) and runs instead."""
    stored = r.define(
        shape,
        {
            "trigger": webhook(concurrency={"key": "${{ labels.service }}", "limit": 1, "mode": "cancel_running"}),
            "steps": [
                {"name": "prepare", "agent": "ok", "on_failure": {"agent": "undo"}},
                {"name": "fix", "agent": "slow"},
            ],
        },
    )
    first = await r.fire(stored, alert("db"))
    await r.step_status(first, "fix", "running")
    second = await r.fire(stored, alert("db"))
    await r.step_status(second, "fix", "running")
    await r.client.get_workflow_handle(second).cancel()  # or it would run its 30 s


async def lane_throttle(r: Recording, shape: str) -> None:
    """throttle: one start per 2 s; the second event waits on the lane's timer."""
    stored = _lane(shape, r, "ok", throttle={"limit": 1, "period": "2s"})
    for _ in range(2):
        await r.fire(stored, alert("db"))


async def lane_debounce(r: Recording, shape: str) -> None:
    """debounce: three events, one run after a quiet second, holding all three."""
    stored = _lane(shape, r, "json", debounce={"period": "1s", "max_wait": "10s"})
    for _ in range(3):
        await r.fire(stored, alert("db"))


async def lane_batch(r: Recording, shape: str) -> None:
    """batch: a full batch of two at once, then one more made at max_wait."""
    stored = _lane(shape, r, "json", batch={"max_events": 2, "max_wait": "1s"})
    for _ in range(3):
        await r.fire(stored, alert("db"))


async def lane_resolve(r: Recording, shape: str) -> None:
    """Resolutions through the lane: of a waiting event (dropped), of the running one (passed on
    to its run as the `resolved` signal), and of one that never came (remembered, then dropped)."""
    stored = _lane(shape, r, "hold", concurrency={"limit": 1})
    running, waiting = alert("db"), alert("db")
    first = await r.fire(stored, running)
    await r.fire(stored, waiting)
    await r.step_status(first, "fix", "running")
    await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=waiting.dedupekey))
    await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=running.dedupekey))
    early = alert("db")
    await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=early.dedupekey))
    await r.fire(stored, early)


async def lane_batch_resolve(r: Recording, shape: str) -> None:
    """Resolutions of collected events (the lane-resolves-collected-per-event patch): a batch of
    two runs while a second waits behind it; one event of the waiting batch resolves (it leaves
    that batch, which then runs with the other), then both events of the running batch (the
    second resolution passes the `resolved` signal on to it)."""
    stored = _lane(shape, r, "hold", batch={"max_events": 2, "max_wait": "10s"}, concurrency={"limit": 1})
    first, second, third, fourth = (alert("db") for _ in range(4))
    running = (await r.fire(stored, first)).replace(":event:", ":batch:")
    await r.fire(stored, second)
    await r.fire(stored, third)
    await r.fire(stored, fourth)
    await r.step_status(running, "fix", "running")
    for resolved in (third, first, second):
        await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=resolved.dedupekey))


async def lane_resolve_kept(r: Recording, shape: str) -> None:
    """`resolved_while_queued: keep`: a waiting event that resolves keeps its place, and its run
    starts in turn knowing of the resolution: with `on_resolved: signal` it runs and shows it, with
    `cancel` it is cancelled before its step starts."""
    for on_resolved in ("signal", "cancel"):
        stored = _lane(
            shape, r, "hold", concurrency={"limit": 1}, on_resolved=on_resolved, resolved_while_queued="keep"
        )
        running, waiting = alert("db"), alert("db")
        first = await r.fire(stored, running)
        await r.fire(stored, waiting)
        await r.step_status(first, "fix", "running")
        await r.resolve(stored, alert("db", key=uuid.uuid4().hex, resolves=waiting.dedupekey))


# --- waiting steps (docs/waiting-steps.md) ----------------------------------------------------


def _approval(**spec: Any) -> dict[str, Any]:
    return {"name": "approve", "approval": {"message": "Restart ${{ input.service }}?", "timeout": "60s", **spec}}


async def approval_approved(r: Recording, shape: str) -> None:
    """A step before the approval gets its URL; a decision with a comment lets the run go on."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "notify", "agent": "json", "with": {"url": "${{ approvals.approve.url }}"}},
                _approval(),
                {"name": "act", "agent": "ok"},
            ]
        },
    )
    handle = await r.manual(stored, {"service": "api"})
    await r.step_status(handle.id, "approve", "waiting")
    await r.decide(handle.id, "approve", "approve", "alice", comment="go ahead")


async def approval_rejected(r: Recording, shape: str) -> None:
    """A rejection skips the step that needed the approval; a `when` on the rejection runs."""
    stored = r.define(
        shape,
        {
            "steps": [
                _approval(),
                {"name": "act", "agent": "ok"},
                {"name": "tell", "agent": "ok", "when": "steps.approve.status == 'rejected'"},
            ]
        },
    )
    handle = await r.manual(stored, {"service": "api"})
    await r.step_status(handle.id, "approve", "waiting")
    await r.decide(handle.id, "approve", "reject", "alice", comment="not now")


async def approval_timeout(r: Recording, shape: str) -> None:
    """Nobody decides: each `on_timeout` (reject, approve, and fail, which compensates)."""
    for on_timeout in ("reject", "approve", "fail"):
        stored = r.define(
            shape,
            {
                "steps": [
                    {"name": "before", "agent": "ok", "on_failure": {"agent": "undo"}},
                    _approval(timeout="1s", on_timeout=on_timeout),
                    {"name": "act", "agent": "ok"},
                ]
            },
        )
        await r.manual(stored, {"service": on_timeout})


async def approval_min_approvals(r: Recording, shape: str) -> None:
    """min_approvals 2: two tokens approve; the first one's second decision is refused (and
    leaves nothing in the history)."""
    stored = r.define(shape, {"steps": [_approval(min_approvals=2), {"name": "act", "agent": "ok"}]})
    handle = await r.manual(stored, {"service": "api"})
    await r.step_status(handle.id, "approve", "waiting")
    await r.decide(handle.id, "approve", "approve", "alice")
    try:
        await r.decide(handle.id, "approve", "approve", "alice")
    except WorkflowUpdateFailedError:
        pass
    else:
        raise AssertionError("alice decided twice")
    await r.decide(handle.id, "approve", "approve", "bob", comment="second")


async def approval_resolved(r: Recording, shape: str) -> None:
    """The run's alert resolves while its approval waits: the approval ends (resolved), the
    step guarded by `resolved == null` is skipped, the next one runs."""
    stored = r.define(
        shape,
        {
            "trigger": webhook(on_resolved="signal"),
            "steps": [
                _approval(message="Restart ${{ labels.service }}?"),
                {"name": "act", "agent": "ok", "when": "resolved == null"},
                {"name": "notify", "agent": "ok"},
            ],
        },
    )
    firing = alert("api")
    run_id = await r.fire(stored, firing)
    await r.step_status(run_id, "approve", "waiting")
    await r.resolve(stored, alert("api", key=uuid.uuid4().hex, resolves=firing.dedupekey))


def _wait_for(**spec: Any) -> dict[str, Any]:
    return {
        "name": "wait",
        "wait_for": {
            "source": "alertmanager",
            "filter": ['alertname="Down"'],
            "correlate": {"event": "${{ labels.service }}", "run": "${{ input.service }}"},
            **spec,
        },
    }


async def wait_for_during(r: Recording, shape: str) -> None:
    """The event comes while the run waits (the run started the mailbox, which passes it on); a
    second one comes once the run waits no more (the mailbox keeps it for nobody, then ends)."""
    stored = r.define(
        shape,
        {
            "steps": [
                _wait_for(timeout="60s"),
                {"name": "after", "agent": "hold", "with": {"e": "${{ steps.wait.output }}"}},
            ]
        },
    )
    service = f"svc-{uuid.uuid4().hex[:6]}"
    handle = await r.manual(stored, {"service": service})
    await r.step_status(handle.id, "wait", "waiting")
    await r.running(waits_id(stored.id, "wait", service))
    await r.deliver(stored, alert(service))
    await r.step_status(handle.id, "after", "running")
    await r.deliver(stored, alert(service))


async def wait_for_lookback(r: Recording, shape: str) -> None:
    """The event came shortly before the wait began: the mailbox kept it, the run registers
    with it (the mailbox runs already) and takes it within its lookback."""
    stored = r.define(shape, {"steps": [_wait_for(timeout="60s", lookback="10s")]})
    service = f"svc-{uuid.uuid4().hex[:6]}"
    await r.deliver(stored, alert(service))
    await r.manual(stored, {"service": service})


async def wait_for_timeout(r: Recording, shape: str) -> None:
    """No event comes: the wait leaves its mailbox and fails (on_timeout fail) or goes on with
    a null output (on_timeout succeed)."""
    for on_timeout in ("fail", "succeed"):
        stored = r.define(
            shape,
            {
                "steps": [
                    _wait_for(timeout="1s", on_timeout=on_timeout),
                    {"name": "after", "agent": "json", "with": {"e": "${{ steps.wait.output }}"}},
                ]
            },
        )
        await r.manual(stored, {"service": f"svc-{uuid.uuid4().hex[:6]}"})


async def sleep(r: Recording, shape: str) -> None:
    """Durable timers: `for` a duration, `until` a time ahead (ISO 8601) and one past (epoch
    seconds: it ends at once)."""
    stored = r.define(
        shape,
        {
            "steps": [
                {"name": "pause", "sleep": {"for": "1s"}},
                {"name": "until", "sleep": {"until": "${{ input.at }}"}},
                {"name": "past", "sleep": {"until": "${{ input.past }}"}},
                {"name": "after", "agent": "json", "with": {"slept": "${{ steps.until.output }}"}},
            ]
        },
    )
    now = datetime.now(UTC)
    await r.manual(stored, {"at": (now + timedelta(seconds=3)).isoformat(), "past": int(now.timestamp()) - 60})


SHAPES: dict[str, Shape] = {
    "sequential": sequential,
    "parallel": parallel,
    "parallel-failure": parallel_failure,
    "requires": requires,
    "retries": retries,
    "compensation": compensation,
    "cancellation": cancellation,
    "timeout": timeout,
    "inline-action": inline_action,
    "local-steps": local_steps,
    "event-run": event_run,
    "resolved-signal": resolved_signal,
    "resolved-cancel": resolved_cancel,
    "resolved-first": resolved_first,
    "lane-queue": lane_queue,
    "lane-skip": lane_skip,
    "lane-replace-queued": lane_replace_queued,
    "lane-cancel-running": lane_cancel_running,
    "lane-throttle": lane_throttle,
    "lane-debounce": lane_debounce,
    "lane-batch": lane_batch,
    "lane-resolve": lane_resolve,
    "lane-batch-resolve": lane_batch_resolve,
    "lane-resolve-kept": lane_resolve_kept,
    "approval-approved": approval_approved,
    "approval-rejected": approval_rejected,
    "approval-timeout": approval_timeout,
    "approval-min-approvals": approval_min_approvals,
    "approval-resolved": approval_resolved,
    "wait-for-during": wait_for_during,
    "wait-for-lookback": wait_for_lookback,
    "wait-for-timeout": wait_for_timeout,
    "sleep": sleep,
}
#: What each workflow type's histories are called in a shape's folder (runs: run-<n>.json).
KINDS = {"HooklineLane": "lane", WAITS_WORKFLOW: "waits"}


# ---------------------------------------------------------------------------------------------


def agents(workdir: Path) -> AgentCatalog:
    catalog = {
        name: Agent(name=name, command=tuple(argv), workdir=workdir, timeout_s=120) for name, argv in SCRIPTS.items()
    }
    for name in ("ok", "flaky", "fail"):
        catalog[f"local-{name}"] = Agent(
            name=f"local-{name}", pool=LOCAL_POOL, command=tuple(SCRIPTS[name]), workdir=workdir, timeout_s=20
        )
    return AgentCatalog(agents=catalog)


async def _once(workflow_id: str, call: Callable[[], Awaitable[Any]]) -> Any:
    """The triggers retry a delivery while Temporal is away; here it is there, or recording fails."""
    return await call()


async def closed_workflows(r: Recording, definition: str, timeout: float) -> list[Any]:
    """Every workflow of `definition` (runs and lanes), once all are closed."""
    query = f"{SA_DEFINITION.name} = {query_literal(definition)}"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [w async for w in r.client.list_workflows(query)]
        if found and all(w.status != WorkflowExecutionStatus.RUNNING for w in found):
            return sorted(found, key=lambda w: (w.start_time, w.id))
        if asyncio.get_running_loop().time() > deadline:
            still = [w.id for w in found if w.status == WorkflowExecutionStatus.RUNNING]
            raise TimeoutError(f"{definition}: still running after {timeout:g}s: {still}")
        await asyncio.sleep(1.0)


async def record(names: list[str], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="hookline-record-") as scratch:
        base = Path(scratch)
        server = TemporalServer(base / "temporal", port=free_port())
        await server.start()
        try:
            task_queue = f"record-{uuid.uuid4().hex[:8]}"
            settings = TemporalSettings(
                address=server.address,
                task_queue=task_queue,
                runner_queue_prefix=f"{task_queue}.runner.",
                local_pools=[LOCAL_POOL],
            )
            client = await connect(settings)
            catalog = agents(base)
            worker = WorkerSettings(temporal=settings, worker=WorkerOptions(inline_runners=["shell"]))
            starter = WorkflowStarter(client, settings, catalog, retry_max_s=1.0, stopping=asyncio.Event())
            waits = WaitDelivery(client, settings, _once)
            async with AsyncExitStack() as stack:
                for w in build_workers(worker, client, catalog):
                    await stack.enter_async_context(w)
                recordings = {name: Recording(client, settings, catalog, starter, waits) for name in names}
                await asyncio.gather(*(SHAPES[name](recordings[name], name) for name in names))
                # A lane ends after a minute without work (worker/lane.py IDLE), a mailbox a
                # minute after its last event (worker/waitbox.py MIN_KEEP_S).
                closed = await asyncio.gather(
                    *(closed_workflows(recordings[n], d, 180.0) for n in names for d in recordings[n].definitions)
                )
                by_shape: dict[str, list[Any]] = {name: [] for name in names}
                index = 0
                for name in names:
                    for _ in recordings[name].definitions:
                        by_shape[name].extend(closed[index])
                        index += 1
                for name, workflows in by_shape.items():
                    folder = out / name
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir(parents=True)
                    counts: dict[str, int] = {}
                    for listed in workflows:
                        kind = KINDS.get(listed.workflow_type or "", "run")
                        counts[kind] = counts.get(kind, 0) + 1
                        history = await client.get_workflow_handle(listed.id, run_id=listed.run_id).fetch_history()
                        document = json.loads(history.to_json())
                        (folder / f"{kind}-{counts[kind]}.json").write_text(json.dumps(document, indent=1) + "\n")
                    print(f"{name}: {', '.join(f'{n} {k}(s)' for k, n in sorted(counts.items()))}")
        finally:
            server.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shapes", nargs="*", metavar="SHAPE", help=f"default: every shape ({', '.join(SHAPES)})")
    parser.add_argument("--version", default=version("hookline"), help="the folder under tests/data/histories")
    args = parser.parse_args(argv)
    names = list(args.shapes) or list(SHAPES)
    if unknown := sorted(set(names) - set(SHAPES)):
        parser.error(f"unknown shape(s) {', '.join(unknown)}; the shapes are {', '.join(SHAPES)}")
    out = HISTORIES / args.version
    configure_logging(LogSettings(level="warning", format="console"), "record")
    logging.getLogger("temporalio").setLevel(logging.ERROR)  # steps fail on purpose: no tracebacks
    asyncio.run(record(names, out))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

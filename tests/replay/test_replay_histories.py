"""Upgrade safety: a run started by one version of Hookline must finish on the next version's
workers. tests/data/histories/<version>/<shape>/ holds the recorded histories of runs of every
shape (tests/replay/record.py made them on a real Temporal with the real worker); each is
replayed here against the current interpreter and lane with Temporal's `Replayer`, in the
sandbox (which also refuses non-deterministic code) and unsandboxed (as the worker runs it by
default). A change that would issue other commands than a recorded history holds (a step added,
removed or started differently, a timer or a child that was not there), or that can no longer
read a recorded input or signal, fails here: make it with `workflow.patched` (docs/deploy.md).

Temporal's replayer matches a command to its event by kind and sequence number only: a step whose
request changed (another step's compensation scheduled in its place, other input) would replay
without a word, and the run would go on with the results of another step. So the unsandboxed
replay also compares, in order, every activity, child workflow and external signal the code
starts with the one the history recorded, arguments included.

No server: the replayer runs the workflow code against the history in this process.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payloads
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    Interceptor,
    Replayer,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.conftest import ROOT
from tests.replay.record import SHAPES
from worker.lane import HooklineLane
from worker.waitbox import HooklineWaits
from worker.workflow import HooklineRun

HISTORIES = ROOT / "tests" / "data" / "histories"
RECORDED = sorted(HISTORIES.glob("*/*/*.json"))
#: The workflows the worker registers (worker/app.py build_workers).
WORKFLOWS = [HooklineRun, HooklineLane, HooklineWaits]


#: What the replayed code started, in order: (kind, name, target, arguments as JSON).
Started = tuple[str, str, str, list[Any]]
#: The task queue of the workflow itself, in what it starts.
OWN_QUEUE = "<its own task queue>"


def as_json(args: Any) -> list[Any]:
    """Arguments as the data converter writes them, read back as plain JSON values."""
    converter = pydantic_data_converter.payload_converter
    payloads = args if isinstance(args, Payloads) else Payloads(payloads=converter.to_payloads(list(args)))
    return [json.loads(p.data) for p in payloads.payloads]


class StartsRecorder(Interceptor):
    """Records every activity, child workflow and external signal the replayed workflow starts."""

    def __init__(self) -> None:
        self.started: list[Started] = []

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        started = self.started

        def queue(name: str | None) -> str:
            # The replayer runs the workflow on a task queue of its own.
            return OWN_QUEUE if name in (None, workflow.info().task_queue) else str(name)

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                started.append(("activity", input.activity, queue(input.task_queue), as_json(input.args)))
                return super().start_activity(input)

            async def start_child_workflow(
                self, input: StartChildWorkflowInput
            ) -> workflow.ChildWorkflowHandle[Any, Any]:
                started.append(
                    ("child", input.workflow, f"{input.id} on {queue(input.task_queue)}", as_json(input.args))
                )
                return await super().start_child_workflow(input)

            async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
                started.append(("signal", input.signal, input.workflow_id, as_json(input.args)))
                await super().signal_external_workflow(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


def recorded_starts(history: WorkflowHistory) -> list[Started]:
    """The activities, child workflows and external signals the history holds, in order."""
    found: list[Started] = []
    own = history.events[0].workflow_execution_started_event_attributes.task_queue.name

    def queue(name: str) -> str:
        return OWN_QUEUE if name == own else name

    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            a = event.activity_task_scheduled_event_attributes
            found.append(("activity", a.activity_type.name, queue(a.task_queue.name), as_json(a.input)))
        elif event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            c = event.start_child_workflow_execution_initiated_event_attributes
            found.append(
                ("child", c.workflow_type.name, f"{c.workflow_id} on {queue(c.task_queue.name)}", as_json(c.input))
            )
        elif event.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            s = event.signal_external_workflow_execution_initiated_event_attributes
            found.append(("signal", s.signal_name, s.workflow_execution.workflow_id, as_json(s.input)))
    return found


def load(path: Path) -> WorkflowHistory:
    """A recorded history under its own workflow id (the steps' requests carry it)."""
    document = json.loads(path.read_text())
    workflow_id = document["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    return WorkflowHistory.from_json(workflow_id, document)


def test_the_current_version_has_a_history_of_every_shape() -> None:
    """Histories of this version (`python -m tests.replay.record`) for every shape the recorder
    knows, each lane shape with its lane, each wait_for shape with its mailbox; older versions'
    folders stay, and replay too."""
    current = HISTORIES / version("hookline")
    recorded = {p.name for p in current.iterdir() if any(p.glob("run-*.json"))} if current.is_dir() else set()
    assert recorded >= set(SHAPES), f"{current} lacks {sorted(set(SHAPES) - recorded)}: run tests/replay/record.py"
    lanes = {p.parent.name for p in current.glob("*/lane-*.json")}
    assert {name for name in SHAPES if name.startswith("lane-")} <= lanes
    mailboxes = {p.parent.name for p in current.glob("*/waits-*.json")}
    assert {name for name in SHAPES if name.startswith("wait-for-")} <= mailboxes


@pytest.mark.parametrize("path", RECORDED, ids=[str(p.relative_to(HISTORIES)) for p in RECORDED])
async def test_a_recorded_history_replays_in_the_sandbox(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SandboxedWorkflowRunner()
    )
    await replayer.replay_workflow(load(path))


@pytest.mark.parametrize("path", RECORDED, ids=[str(p.relative_to(HISTORIES)) for p in RECORDED])
async def test_a_recorded_history_replays_starting_the_same_steps_with_the_same_requests(path: Path) -> None:
    history = load(path)
    recorder = StartsRecorder()
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
        interceptors=[recorder],
    )
    await replayer.replay_workflow(history)
    assert recorder.started == recorded_starts(history)

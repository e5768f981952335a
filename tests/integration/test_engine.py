"""The interpreter on a real Temporal server: retries, timeouts, compensation, conditions,
outputs, cancellation and parallel failure. Steps run real processes on the shell runner."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.worker import Replayer

from hookline.definitions import StoredDefinition
from hookline.runs import build_request, start_run
from hookline.settings import TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from schemas.workflow import parse_definition
from tests.eventually import eventually
from tests.replaying import replayed
from worker.app import build_workers
from worker.settings import WorkerOptions, WorkerSettings
from worker.workflow import HooklineRun

# Each agent is a small real program; `log` appends "<step> <compensation flag>" to a file.
SCRIPTS = {
    "ok": ["sh", "-c", "echo ok"],
    "log": ["sh", "-c", 'echo "$HOOKLINE_STEP $HOOKLINE_COMPENSATION" >> steps.log; echo logged'],
    "fail": ["sh", "-c", "echo boom; exit 3"],
    "flaky": ["sh", "-c", "n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries; [ $n -ge 3 ]"],
    "slow": ["sh", "-c", 'echo $$ > "pid-$HOOKLINE_STEP"; exec sleep 60'],
    "echo-json": [
        "python3",
        "-c",
        "import json, sys; d = json.load(sys.stdin); print(json.dumps({'got': d['input'], 'step': d['step']}))",
    ],
}


@pytest.fixture(params=["queued", "local"])
def temporal_settings(request: pytest.FixtureRequest, temporal_settings: TemporalSettings) -> TemporalSettings:
    """Every test twice: steps through the shell pool's task queue, and as local activities
    (`temporal.local_pools`) in the worker that runs the interpreter."""
    if request.param == "local":
        return temporal_settings.model_copy(update={"local_pools": ["shell"], "local_max_timeout_s": 600.0})
    return temporal_settings


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def engine_agents(workdir: Path) -> AgentCatalog:
    return AgentCatalog(
        agents={
            name: Agent(name=name, runner="shell", command=tuple(argv), workdir=workdir, timeout_s=120)
            for name, argv in SCRIPTS.items()
        }
    )


@pytest.fixture
async def engine(
    temporal_client: Client, temporal_settings: TemporalSettings, engine_agents: AgentCatalog
) -> AsyncIterator[None]:
    """A worker (interpreter + shell runner) with the test agents; inline shell actions allowed."""
    settings = WorkerSettings(temporal=temporal_settings, worker=WorkerOptions(inline_runners=["shell"]))
    async with AsyncExitStack() as stack:
        for w in build_workers(settings, temporal_client, engine_agents):
            await stack.enter_async_context(w)
        yield


@pytest.fixture
async def start(
    engine: None, temporal_client: Client, temporal_settings: TemporalSettings, engine_agents: AgentCatalog
) -> AsyncIterator[Callable[..., Any]]:
    """Starts a run of a definition. Afterwards, every run's history is replayed in Temporal's
    sandbox: the worker runs the interpreter unsandboxed (worker.workflow_sandbox), so this is
    where non-deterministic workflow code would show."""
    started: list[WorkflowHandle[Any, RunState]] = []
    client = temporal_client  # runs with local steps start with temporal.local_task_timeout_s (2 s)

    async def start(doc: dict[str, Any], input: dict[str, Any] | None = None) -> WorkflowHandle[Any, RunState]:
        definition = parse_definition(doc, agents=engine_agents.agents.keys())
        stored = StoredDefinition(
            id=definition.id, version=1, digest="", document=doc, definition=definition, created_at=""
        )
        request = build_request(stored, engine_agents, temporal_settings, input=input)
        handle, _ = await start_run(client, temporal_settings, request, f"{definition.id}:{uuid.uuid4().hex}")
        started.append(handle)
        return handle

    yield start
    replayer = Replayer(workflows=[HooklineRun], data_converter=temporal_client.data_converter)
    for handle in started:
        await replayed(replayer, await handle.fetch_history())


async def outcome(handle: WorkflowHandle[Any, RunState]) -> tuple[RunState, str | None]:
    """The final state (from the `state` query, which answers after the run ended too) and the
    failure message if the run failed."""
    error = None
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        error = str(exc.cause)
    state = await handle.query("state", result_type=RunState)
    return state, error


async def wait_for_step(handle: WorkflowHandle[Any, RunState], step: str, status: str) -> None:
    async def reached() -> bool:
        state = await handle.query("state", result_type=RunState)
        return state is not None and state.steps[step].status == status

    await eventually(reached, f"step {step} to be {status}")


def alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_flaky_step_is_retried_until_it_succeeds(start: Callable[..., Any]) -> None:
    handle = await start(
        {
            "name": "retry",
            "steps": [
                {"name": "a", "agent": "flaky", "retries": {"max_attempts": 5, "initial_interval": "100ms"}},
            ],
        }
    )
    state, error = await outcome(handle)
    assert error is None
    assert (state.status, state.steps["a"].status, state.steps["a"].attempts) == ("succeeded", "succeeded", 3)


async def test_a_step_that_keeps_failing_fails_the_run_after_its_attempts(start: Callable[..., Any]) -> None:
    handle = await start(
        {
            "name": "fail",
            "steps": [{"name": "a", "agent": "fail", "retries": {"max_attempts": 2, "initial_interval": 0.1}}],
        }
    )
    state, error = await outcome(handle)
    assert state.status == "failed"
    assert (state.steps["a"].status, state.steps["a"].attempts) == ("failed", 2)
    assert state.steps["a"].error == "exited with code 3"
    assert error is not None and "step 'a' failed: exited with code 3" in error


async def test_non_retryable_error_types_stop_retries_at_once(start: Callable[..., Any]) -> None:
    handle = await start(
        {
            "name": "no-retry",
            "steps": [
                {"name": "a", "agent": "fail", "retries": {"max_attempts": 5, "non_retryable_errors": ["ExitCode"]}}
            ],
        }
    )
    state, _ = await outcome(handle)
    assert (state.steps["a"].status, state.steps["a"].attempts) == ("failed", 1)


async def test_a_step_over_its_timeout_is_killed_and_fails(start: Callable[..., Any], workdir: Path) -> None:
    handle = await start({"name": "timeout", "steps": [{"name": "a", "agent": "slow", "timeout": "1s", "retries": 1}]})
    state, _ = await outcome(handle)
    assert (state.steps["a"].status, state.steps["a"].error) == ("failed", "timed out after 1s")
    assert not alive(workdir / "pid-a")


async def test_a_failed_run_compensates_completed_steps_in_reverse_order(
    start: Callable[..., Any], workdir: Path
) -> None:
    handle = await start(
        {
            "name": "saga",
            "steps": [
                {"name": "reserve", "agent": "log", "on_failure": {"agent": "log"}},
                {"name": "no-undo", "agent": "ok"},
                {"name": "charge", "agent": "log", "on_failure": {"agent": "log"}},
                {"name": "ship", "agent": "fail", "retries": 1, "on_failure": {"agent": "log"}},
            ],
        }
    )
    state, error = await outcome(handle)
    assert state.status == "failed" and error is not None
    assert (workdir / "steps.log").read_text().splitlines() == ["reserve 0", "charge 0", "charge 1", "reserve 1"]
    assert {n: s.status for n, s in state.steps.items()} == {
        "reserve": "compensated",
        "no-undo": "succeeded",
        "charge": "compensated",
        "ship": "failed",
    }
    assert state.steps["charge"].compensation == "succeeded"


async def test_continue_on_error_lets_the_run_go_on(start: Callable[..., Any]) -> None:
    handle = await start(
        {
            "name": "tolerant",
            "steps": [
                {"name": "a", "agent": "fail", "retries": 1, "continue_on_error": True},
                {"name": "b", "agent": "ok", "when": "steps.a.status == 'failed'"},
            ],
        }
    )
    state, error = await outcome(handle)
    assert error is None and state.status == "succeeded"
    assert (state.steps["a"].status, state.steps["b"].status) == ("failed", "succeeded")


@pytest.mark.parametrize(("environment", "expected"), [("production", "succeeded"), ("staging", "skipped")])
async def test_when_decides_whether_a_step_runs(start: Callable[..., Any], environment: str, expected: str) -> None:
    handle = await start(
        {
            "name": "conditional",
            "steps": [
                {"name": "approve", "agent": "ok", "when": "${{ input.environment == 'production' }}"},
                {"name": "deploy", "agent": "ok"},
            ],
        },
        {"environment": environment},
    )
    state, _ = await outcome(handle)
    assert state.steps["approve"].status == expected
    assert state.steps["deploy"].status == "succeeded"  # a skipped step counts as done


async def test_step_outputs_and_input_flow_into_later_steps(start: Callable[..., Any]) -> None:
    handle = await start(
        {
            "name": "outputs",
            "steps": [
                {"name": "Build Image", "agent": "echo-json", "with": {"tag": "${{ input.version }}"}},
                {
                    "name": "deploy",
                    "agent": "echo-json",
                    "with": {
                        "image": '${{ steps."Build Image".output.got.tag }}',
                        "message": "deploy ${{ input.version }} to ${{ input.environment }}",
                        "retries": "${{ `3` }}",
                    },
                },
            ],
        },
        {"environment": "production", "version": "v1.2.3"},
    )
    state, error = await outcome(handle)
    assert error is None, error
    assert state.steps["deploy"].output is not None
    assert json.loads(state.steps["deploy"].output)["got"] == {
        "image": "v1.2.3",
        "message": "deploy v1.2.3 to production",
        "retries": 3,
    }


async def test_cancelling_a_run_stops_its_running_step(
    start: Callable[..., Any], temporal_client: Client, workdir: Path
) -> None:
    handle = await start(
        {
            "name": "cancel",
            "steps": [
                {"name": "first", "agent": "log", "on_failure": {"agent": "log"}},
                {"name": "wait", "agent": "slow"},
            ],
        }
    )
    await wait_for_step(handle, "wait", "running")
    await eventually((workdir / "pid-wait").exists, "the step to write its pid", timeout=5)
    assert alive(workdir / "pid-wait")
    await handle.cancel()
    state, error = await outcome(handle)
    assert error is not None and "cancel" in error.lower()
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert (state.status, state.steps["wait"].status, state.steps["first"].status) == (
        "cancelled",
        "cancelled",
        "compensated",
    )
    assert not alive(workdir / "pid-wait")


async def test_a_failing_parallel_branch_cancels_its_siblings(start: Callable[..., Any], workdir: Path) -> None:
    handle = await start(
        {
            "name": "branches",
            "parallel": [
                {"name": "long", "agent": "slow"},
                {"name": "broken", "agent": "fail", "retries": 1},
            ],
        }
    )
    state, error = await outcome(handle)
    assert error is not None and "broken" in error
    assert (state.steps["long"].status, state.steps["broken"].status) == ("cancelled", "failed")
    assert not alive(workdir / "pid-long")


async def test_a_run_over_its_timeout_fails_and_compensates(start: Callable[..., Any], workdir: Path) -> None:
    handle = await start(
        {
            "name": "deadline",
            "timeout": "2s",
            "steps": [
                {"name": "prepare", "agent": "log", "on_failure": {"agent": "log"}},
                {"name": "hang", "agent": "slow"},
            ],
        }
    )
    state, error = await outcome(handle)
    assert error is not None and "timed out after 2s" in error
    assert (state.steps["prepare"].status, state.steps["hang"].status) == ("compensated", "cancelled")
    assert (workdir / "steps.log").read_text().splitlines() == ["prepare 0", "prepare 1"]


async def test_inline_actions_run_on_their_runner(start: Callable[..., Any]) -> None:
    handle = await start(
        {"name": "inline", "steps": [{"name": "a", "action": {"runner": "shell", "command": ["sh", "-c", "echo hi"]}}]}
    )
    state, error = await outcome(handle)
    assert error is None and state.steps["a"].output == "hi\n"


async def test_expression_errors_at_run_time_fail_the_step_with_the_reason(start: Callable[..., Any]) -> None:
    handle = await start(
        {"name": "bad-expr", "steps": [{"name": "a", "agent": "ok", "when": "length(input.n)"}]}, {"n": 5}
    )
    state, _ = await outcome(handle)
    assert state.steps["a"].status == "failed"
    assert state.steps["a"].error is not None and "length" in state.steps["a"].error


async def test_local_steps_leave_markers_and_queued_steps_activity_tasks(
    start: Callable[..., Any], temporal_settings: TemporalSettings
) -> None:
    handle = await start(
        {
            "name": "three in a row",
            "steps": [
                {"name": "a", "agent": "ok"},
                {"name": "b", "agent": "ok", "requires": ["a"]},
                {"name": "c", "agent": "ok", "requires": ["b"]},
            ],
        }
    )
    state, error = await outcome(handle)
    assert (error, state.status) == (None, "succeeded")
    kinds = [event.event_type for event in (await handle.fetch_history()).events]
    scheduled = kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    markers = kinds.count(EventType.EVENT_TYPE_MARKER_RECORDED)
    tasks = kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    if temporal_settings.local_pools:
        # All three steps ran inside the run's first workflow task.
        assert (scheduled, markers, tasks) == (0, 3, 1)
    else:
        assert (scheduled, markers, tasks) == (3, 0, 4)

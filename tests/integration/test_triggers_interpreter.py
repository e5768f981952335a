"""`triggers.interpreter`: the triggers run the interpreter too and start runs eagerly (the first
workflow task comes back with the start, to their own interpreter). The runs they host complete
there; and when the triggers process is SIGKILLed or SIGSTOPped while hosting runs, those runs go
on in a worker, each once, every step once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.slots import WorkflowTaskSlots
from schemas.agents import Agent, AgentCatalog
from tests.conftest import running
from tests.eventually import eventually
from tests.integration.conftest import runs_of, start_component, wait_for_result
from tests.integration.test_flow_control import remediation, run_ids
from tests.notifications import notification
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings
from worker.app import build_workers, running_interpreter
from worker.settings import WorkerOptions, WorkerSettings


def logging_agent(log: Path, release: Path) -> Agent:
    """Logs "start" and "done" around waiting for `release`: how often each step ran, and a step
    that surely runs while the test kills or stops the process that hosts its run."""
    script = f"echo start >> {log}; while [ ! -f {release} ]; do sleep 0.05; done; echo done >> {log}"
    return Agent(name="logged", command=("sh", "-c", script), timeout_s=120)


@pytest.fixture
def steps_log(tmp_path: Path) -> Path:
    return tmp_path / "steps.log"


@pytest.fixture
def agents(steps_log: Path, release: Path) -> AgentCatalog:
    return AgentCatalog(agents={"logged": logging_agent(steps_log, release)})


@pytest.fixture
async def pools_only(
    temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> AsyncIterator[None]:
    """A worker that serves the runner pools but not the interpreter."""
    settings = WorkerSettings(temporal=temporal_settings, worker=WorkerOptions(workflows=False))
    async with AsyncExitStack() as stack:
        for w in build_workers(settings, temporal_client, agents):
            await stack.enter_async_context(w)
        yield


async def task_identities(client: Client, workflow_id: str) -> list[str]:
    """Who took each of the run's workflow tasks, in order. A task handed back with an eager
    start names the starter's client (Temporal records the start request's identity)."""
    return [
        event.workflow_task_started_event_attributes.identity
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.usefixtures("pools_only")
@pytest.mark.parametrize("local", [False, True], ids=["queued steps", "local steps"])
async def test_the_triggers_host_the_runs_they_start_eagerly(
    local: bool,
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents: AgentCatalog,
    steps_log: Path,
    release: Path,
) -> None:
    await store.put(remediation("Hosted", "logged"))
    release.touch()
    if local:  # the step runs in the interpreter that holds the run: the triggers' own
        local_pools = {"local_pools": ["shell"], "local_max_timeout_s": agents.agents["logged"].timeout_s}
        temporal_settings = temporal_settings.model_copy(update=local_pools)
    options = TriggersOptions(group_id=kafka_settings.topic_prefix, port=0, ticker=False, interpreter=True)
    settings = TriggersSettings(kafka=kafka_settings, temporal=temporal_settings, triggers=options)
    worker_settings = WorkerSettings(temporal=temporal_settings)
    identity = f"{temporal_client.identity}:triggers"

    def interpreter(client: Client, registry: Any) -> Any:
        return running_interpreter(worker_settings, client, agents, registry=registry, identity=identity)

    with pytest.raises(ValueError, match="no interpreter"):
        TriggersService(settings, temporal_client, agents=agents)
    service = TriggersService(settings, temporal_client, agents=agents, interpreter=interpreter)
    body = notification(3, "hosted")
    async with running(service.run, service.stop):
        assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        # No worker serves the interpreter's queue: only the triggers' own runs them.
        for run_id in run_ids("hosted", body):
            assert (await wait_for_result(temporal_client, run_id)).status == "succeeded"
            first, *later = await task_identities(temporal_client, run_id)
            assert first == temporal_client.identity  # eager: handed back with the start
            if local:  # one workflow task did it all
                assert later == []
            else:  # the step's result came back to the triggers' interpreter
                assert later and set(later) == {identity}
        exposed = generate_latest(service.metrics.registry).decode()
    assert "hookline_triggers_eager_starts_total 3.0" in exposed
    # The interpreter's metrics are the process's: its local steps' durations, its lanes' counts.
    steps = 'hookline_worker_step_duration_seconds_count{outcome="succeeded",pool="shell",runner="shell"} 3.0'
    assert (steps in exposed) == local
    assert "# TYPE hookline_lane_runs_started_total counter" in exposed
    assert lines(steps_log).count("done") == 3


def eager_starts(exposed: str) -> float:
    (line,) = [line for line in exposed.splitlines() if line.startswith("hookline_triggers_eager_starts_total ")]
    return float(line.split()[1])


@pytest.mark.parametrize("wait_s", [0.0, 60.0], ids=["starts at once", "waits for a slot"])
async def test_a_burst_beyond_the_interpreters_slots_waits_for_them_to_start_every_run_eagerly(
    wait_s: float,
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
) -> None:
    """Twelve runs at once for an interpreter of six workflow task slots, two of them its polls',
    whose local steps take 0.3 s: a start finds no free slot for most of the burst. With
    `triggers.slot_wait_s` it waits for one and every run starts eagerly; without, the runs that
    found none went through the task queue (and still completed, on the same interpreter)."""
    agents = AgentCatalog(agents={"slow": Agent(name="slow", command=("sleep", "0.3"), timeout_s=10)})
    await store.put(remediation("Slotted", "slow"))
    temporal = temporal_settings.model_copy(update={"local_pools": ["shell"]})
    options = TriggersOptions(
        group_id=kafka_settings.topic_prefix, port=0, ticker=False, interpreter=True, slot_wait_s=wait_s
    )
    settings = TriggersSettings(kafka=kafka_settings, temporal=temporal, triggers=options)
    worker = WorkerOptions(max_concurrent_workflow_tasks=6, workflow_task_pollers=2)
    worker_settings = WorkerSettings(temporal=temporal, worker=worker)
    slots = WorkflowTaskSlots(worker.max_concurrent_workflow_tasks)

    def interpreter(client: Client, registry: Any) -> Any:
        return running_interpreter(worker_settings, client, agents, registry=registry, slots=slots)

    service = TriggersService(settings, temporal_client, agents=agents, interpreter=interpreter, slots=slots)
    body = notification(12, "slotted")
    async with running(service.run, service.stop):
        assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        for run_id in run_ids("slotted", body):
            assert (await wait_for_result(temporal_client, run_id, timeout=60)).status == "succeeded"
        eager = eager_starts(generate_latest(service.metrics.registry).decode())
    assert slots.promised == 0  # every promise was taken or given back
    if wait_s:
        assert eager == 12
    else:  # the same burst without the wait: the slots were full for some starts
        assert eager < 12


def start_hosting_triggers(
    kafka: KafkaSettings, temporal: TemporalSettings, agents_file: Path, group: str
) -> subprocess.Popen[bytes]:
    return start_component(
        "triggers",
        kafka,
        temporal,
        HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX=temporal.runner_queue_prefix,
        HOOKLINE_AGENTS_FILE=str(agents_file),
        HOOKLINE_TRIGGERS__GROUP_ID=group,
        HOOKLINE_TRIGGERS__PORT="0",
        HOOKLINE_TRIGGERS__INTERPRETER="true",
    )


@pytest.mark.long
@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["sigkill", "sigstop"])
async def test_runs_hosted_by_triggers_that_die_or_wedge_go_on_in_a_worker_once(
    fault: signal.Signals,
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    agents: AgentCatalog,
    steps_log: Path,
    release: Path,
    tmp_path: Path,
    unique: str,
) -> None:
    await store.put(remediation("Hosted", "logged"))
    agents_file = tmp_path / "agents.yaml"
    logged = agents.agents["logged"]
    agents_file.write_text(
        yaml.safe_dump({"agents": {"logged": {"command": list(logged.command), "timeout_s": logged.timeout_s}}})
    )
    bodies = [notification(2, "hosted") for _ in range(10)]
    ids = [run_id for body in bodies for run_id in run_ids("hosted", body)]
    first = start_hosting_triggers(kafka_settings, temporal_settings, agents_file, unique)
    second: subprocess.Popen[bytes] | None = None
    try:
        for body in bodies:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        # Every run started and its step running (held): the triggers host runs mid-step.
        await eventually(lambda: lines(steps_log).count("start") == len(ids), "every step started", timeout=60)
        # The first process started them eagerly: their first workflow tasks name its client.
        hosted = [i for i in ids if (await task_identities(temporal_client, i))[0].startswith(f"{first.pid}@")]
        assert hosted, "the triggers process started no run eagerly"
        os.kill(first.pid, fault)
        release.touch()
        # The runs go on in the worker (the in-process `worker` fixture serves the interpreter).
        for run_id in ids:
            assert (await wait_for_result(temporal_client, run_id, timeout=90)).status == "succeeded"
        if fault == signal.SIGSTOP:
            first.kill()
        first.wait(10)
        # What the first process had not committed is read again: it finds the runs, starts none.
        second = start_hosting_triggers(kafka_settings, temporal_settings, agents_file, unique)
        await asyncio.sleep(5)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
    for run_id in ids:
        assert len(await runs_of(temporal_client, run_id)) == 1
    for run_id in hosted:  # finished by another interpreter than the one that died or wedged
        assert not (await task_identities(temporal_client, run_id))[-1].startswith(f"{first.pid}@")
    assert lines(steps_log).count("start") == lines(steps_log).count("done") == len(ids)

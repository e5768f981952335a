"""Fixtures and helpers for tests on the real stack."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pytest_aiohttp import AiohttpClient
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from gateway.sources.alertmanager import alert_dedupe_key
from hookline.definitions import DefinitionStore
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings, TemporalSettings
from schemas.agents import Agent, AgentCatalog
from schemas.run import RunState
from tests.conftest import EXAMPLES, ROOT, mark_folder
from tests.eventually import eventually
from tests.integration.console_fixtures import browser, console_page  # noqa: F401  (the console's browser tests)
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings
from worker.app import build_workers
from worker.settings import WorkerSettings

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs the session's Kafka and Temporal: marked `integration`
    here, where no module can forget it, so `pytest -m "not integration"` runs the unit tests."""
    mark_folder(items, HERE, pytest.mark.integration)


async def create_topic(kafka: KafkaSettings, name: str, partitions: int = 1) -> None:
    """A topic `ensure_topics` does not make (a producer's own, or one of another prefix)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def start_component(
    component: str, kafka: KafkaSettings, temporal: TemporalSettings, **variables: str
) -> subprocess.Popen[bytes]:
    """`hookline <component>` as a process of its own on this test's topics and task queue, with
    the example agents, logging JSON (its stderr discarded); `variables` (HOOKLINE_...) add to
    its environment, and win over the defaults."""
    env = {
        **os.environ,
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "HOOKLINE_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "HOOKLINE_TEMPORAL__ADDRESS": temporal.address,
        "HOOKLINE_TEMPORAL__TASK_QUEUE": temporal.task_queue,
        "HOOKLINE_AGENTS_FILE": str(EXAMPLES / "agents.yaml"),
        "HOOKLINE_LOG__FORMAT": "json",
        **variables,  # a test's own win over these
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hookline.cli", component], env=env, cwd=ROOT, stderr=subprocess.DEVNULL
    )


async def wait_ready(client: TestClient[Any, Any]) -> None:
    """The producer connects in the background; wait until the gateway says it is ready."""

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready, "the gateway to be ready", timeout=10, interval=0.1)


@pytest.fixture
async def gateway(aiohttp_client: AiohttpClient, kafka_settings: KafkaSettings) -> TestClient[Any, Any]:
    """A ready gateway on this test's topics, with a 64 KiB body limit."""
    settings = GatewaySettings(kafka=kafka_settings, gateway=GatewayOptions(max_body_bytes=64 * 1024))
    client = await aiohttp_client(create_app(settings))
    await wait_ready(client)
    return client


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    agents: AgentCatalog,
) -> TestClient[Any, Any]:
    """A gateway whose REST API is ready, with the test tokens of `test_api_support`."""
    from tests.integration.test_api_support import api_settings, start_api

    return await start_api(aiohttp_client, api_settings(kafka_settings, temporal_settings), agents)


@pytest.fixture
async def store(kafka_settings: KafkaSettings) -> AsyncIterator[DefinitionStore]:
    """An empty definitions store on this test's topics."""
    store = DefinitionStore(kafka_settings)
    await store.start()
    yield store
    await store.stop()


@pytest.fixture
def triggers_service(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, temporal_client: Client, agents: AgentCatalog
) -> Callable[..., TriggersService]:
    """A triggers service on this test's topics, group and task queues; `TriggersOptions` fields
    as keyword arguments (the ticker is off unless asked for)."""

    def make(**options: Any) -> TriggersService:
        chosen = TriggersOptions(**{"group_id": kafka_settings.topic_prefix, "port": 0, "ticker": False, **options})
        settings = TriggersSettings(kafka=kafka_settings, temporal=temporal_settings, triggers=chosen)
        return TriggersService(settings, temporal_client, agents=agents)

    return make


@pytest.fixture
async def worker(
    temporal_client: Client, temporal_settings: TemporalSettings, agents: AgentCatalog
) -> AsyncIterator[None]:
    settings = WorkerSettings(temporal=temporal_settings)
    async with AsyncExitStack() as stack:
        for w in build_workers(settings, temporal_client, agents):
            await stack.enter_async_context(w)
        yield


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """The file whose creation ends the steps of the `held` agent (`held_agent`)."""
    return tmp_path / "release"


def held_agent(release: Path, timeout_s: float = 60) -> Agent:
    """An agent whose step runs until the test creates `release`: a run that surely runs while
    others arrive, or that a test decides or cancels."""
    return Agent(
        name="held", command=("sh", "-c", f"while [ ! -f {release} ]; do sleep 0.05; done"), timeout_s=timeout_s
    )


def incident_workflow_ids(body: dict[str, Any]) -> list[str]:
    """The workflow id each alert of a notification must run Incident Response under."""
    return [
        event_run_id(
            "incident-response",
            "alertmanager",
            alert_dedupe_key(body["receiver"], a["fingerprint"], a["startsAt"], a["status"]),
        )
        for a in body["alerts"]
    ]


async def runs_of(client: Client, workflow_id: str) -> list[Any]:
    """Every run of `workflow_id` Temporal lists, once its list shows the current run as the run
    itself answers (and, once closed, its end): the list is Temporal's visibility, written after
    the fact, and a start made just now was missing from it once on a loaded machine. [] when
    there is no run."""
    try:
        current = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    running = current.status == WorkflowExecutionStatus.RUNNING  # a closed run's status is final

    async def listed() -> list[Any]:
        return [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]

    return await eventually(
        listed,
        f"Temporal's list to show run {current.run_id} of {workflow_id}",
        until=lambda runs: any(r.run_id == current.run_id and (running or r.status == current.status) for r in runs),
    )


async def started_runs(client: Client, workflow_id: str, timeout: float = 15) -> list[Any]:
    """The runs of `workflow_id`, once there is one."""
    return await eventually(lambda: runs_of(client, workflow_id), f"a run of {workflow_id}", timeout=timeout)


async def wait_for_result(client: Client, workflow_id: str, timeout: float = 60) -> RunState:
    """The result of `workflow_id`, waiting up to `timeout` for it to start, then for its end."""

    async def result() -> RunState | None:
        try:
            return await client.get_workflow_handle(workflow_id, result_type=RunState).result()
        except Exception as exc:  # not started yet
            if "not found" not in str(exc).lower():
                raise
            return None

    state = await eventually(
        result, f"{workflow_id} to start", until=lambda s: s is not None, timeout=timeout, interval=0.1
    )
    assert state is not None
    return state

"""Shared fixtures. Kafka and Temporal are real: started once per session on free ports, and
each test isolates itself with a unique topic prefix, consumer group and task queues."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiokafka import AIOKafkaConsumer
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.kafka import assign_from_beginning, create_consumer, ensure_topics, read_to_end
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import KafkaServer, LocalStack, TemporalServer, free_port
from hookline.temporal import connect
from schemas.agents import AgentCatalog
from schemas.events import Event
from tests import notifications
from tests.stack_paths import may_need_stack

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
EXAMPLES = ROOT / "examples"


@pytest.hookimpl(trylast=True)  # after the folders' hooks have marked their tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts the session's Kafka and Temporal must be marked `integration` (the
    conftest of tests/integration and tests/drill mark theirs), or `-m "not integration"` would
    start them too."""
    unmarked = [
        item.nodeid
        for item in items
        if "stack" in getattr(item, "fixturenames", ()) and item.get_closest_marker("integration") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use the session's Kafka and Temporal (the `stack` fixture) but are not marked"
            " integration; move them under tests/integration or mark them: " + ", ".join(unmarked)
        )
    # The long tests first: pytest-xdist hands out tests in this order as workers free up, so
    # the short ones fill in around the long ones instead of one long test ending the run alone.
    # The chart's tests last: `make test` builds Helm beside the run, and they wait for it.
    items.sort(key=lambda item: (item.path.name == "test_helm_chart.py", item.get_closest_marker("long") is None))
    if SHARED_STACK not in os.environ and any(item.get_closest_marker(mark) for item in items for mark in _STACK_MARKS):
        _hold_suite_lock()  # a shared stack's lock is held by the session that started it


#: Tests with these marks start Kafka and Temporal (or more): one such session at a time per machine.
_STACK_MARKS = ("integration", "drill", "cluster")
_suite_lock: int | None = None


def _hold_suite_lock() -> None:
    """Wait until no other test session on this machine runs its Kafka and Temporal, then hold
    the lock until this session ends (the process exits). Two such sessions at once on a small
    machine make each other's timeouts fail; with the lock the second one waits instead."""
    global _suite_lock
    path = os.environ.get("HOOKLINE_SUITE_LOCK", os.path.join(tempfile.gettempdir(), "hookline-suite.lock"))
    _suite_lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(_suite_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"\nwaiting for another test session's Kafka and Temporal to finish (lock {path})", file=sys.stderr)
        fcntl.flock(_suite_lock, fcntl.LOCK_EX)


def mark_folder(items: list[pytest.Item], folder: Path, *marks: pytest.MarkDecorator) -> None:
    """Give every test under `folder` the `marks`: what a folder's conftest does for its tests,
    so that no module of it can forget one."""
    for item in items:
        if item.path.resolve().is_relative_to(folder):
            for mark in marks:
                item.add_marker(mark)


#: `<kafka bootstrap servers> <temporal address>` of a running stack the tests use instead of
#: starting their own: set by the controller of a `pytest -n N` session for its workers (below).
SHARED_STACK = "HOOKLINE_TEST_STACK"


@dataclasses.dataclass(frozen=True)
class SharedStack:
    """The addresses of a stack this session did not start (the `stack` fixture's other form)."""

    bootstrap_servers: str
    address: str

    @property
    def kafka(self) -> SharedStack:
        return self

    @property
    def temporal(self) -> SharedStack:
        return self


def _new_stack(base: Path) -> LocalStack:
    return LocalStack(
        KafkaServer(base / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port(), heap="512m"),
        TemporalServer(base / "temporal", port=free_port()),
    )


_controller_stack: tuple[LocalStack, Path] | None = None


def pytest_configure(config: pytest.Config) -> None:
    """With `-n N` (pytest-xdist) the controller starts Kafka and Temporal once, before its
    workers, and hands them the addresses (HOOKLINE_TEST_STACK, which the workers inherit):
    one stack for the whole run however many workers share it, stopped when the run ends. Not
    when the run leaves the stack's tests out (`-m "not integration"`) or already has one."""
    global _controller_stack
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if SHARED_STACK in os.environ or "not integration" in (config.option.markexpr or ""):
        return
    if not may_need_stack(config.args, config.invocation_params.dir):
        return  # e.g. `pytest -n 2 tests/unit`: no stack to start, no other session's to wait for
    _hold_suite_lock()
    # Not the debug lines of its readiness waits on the terminal: nothing captures them here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    base = Path(tempfile.mkdtemp(prefix="hookline-stack-"))
    local = _new_stack(base)
    _controller_stack = local, base
    asyncio.run(local.start())
    os.environ[SHARED_STACK] = f"{local.kafka.bootstrap_servers} {local.temporal.address}"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _controller_stack is not None:
        local, base = _controller_stack
        local.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack | SharedStack]:
    """A real Kafka (KRaft) and an in-memory Temporal dev server for the whole session: this
    session's own, or the one HOOKLINE_TEST_STACK names (shared by the workers of `-n N`)."""
    if shared := os.environ.get(SHARED_STACK):
        bootstrap_servers, address = shared.split()
        yield SharedStack(bootstrap_servers, address)
        return
    local = _new_stack(tmp_path_factory.mktemp("stack"))
    asyncio.run(local.start())
    try:
        yield local
    finally:
        local.kill()  # its data is thrown away: no graceful stop (~10 s of Kafka's shutdown)


@pytest.fixture
def unique() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def kafka_settings(stack: LocalStack | SharedStack, unique: str) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=stack.kafka.bootstrap_servers, topic_prefix=unique, events_partitions=3, client_id=unique
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture
def temporal_settings(stack: LocalStack | SharedStack, unique: str) -> TemporalSettings:
    return TemporalSettings(address=stack.temporal.address, task_queue=unique, runner_queue_prefix=f"{unique}.runner.")


@pytest.fixture
async def temporal_client(temporal_settings: TemporalSettings) -> Client:
    return await connect(temporal_settings)


@pytest.fixture
def agents() -> AgentCatalog:
    return AgentCatalog.load(EXAMPLES / "agents.yaml")


@pytest.fixture
def notification() -> Callable[..., dict[str, Any]]:
    """A real-shaped Alertmanager v4 notification with fingerprints unique to the test."""

    def make(status: str = "firing", alerts: int = 2) -> dict[str, Any]:
        return notifications.notification(alerts, "checkout", status)

    return make


@pytest.fixture
async def definitions(kafka_settings: KafkaSettings) -> AsyncIterator[DefinitionStore]:
    """The example workflows applied to this test's definitions topic."""
    store = DefinitionStore(kafka_settings)
    await store.start()
    await store.apply_directory(EXAMPLES / "workflows")
    yield store
    await store.stop()


async def read_topic(
    settings: KafkaSettings, topic: str, *, expect: int | None = None, timeout: float = 10.0
) -> list[Any]:
    """Every record on `topic` (all partitions) from the beginning to its end (`read_to_end`),
    read on from there until there are `expect` records or `timeout` has passed."""
    # A short long poll: a read again asks the ends on the connection the poll holds.
    consumer: AIOKafkaConsumer = create_consumer(settings, group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        ends: dict[Any, int] | None = await assign_from_beginning(consumer, topic)
        records: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            records += [record async for record in read_to_end(consumer, ends)]
            if expect is None or len(records) >= expect or loop.time() >= deadline:
                return records
            ends = None
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def events_of(records: list[Any]) -> list[Event]:
    return [Event.from_kafka(r.value, r.headers) for r in records]


@contextlib.asynccontextmanager
async def running(
    coro_factory: Callable[[], Awaitable[None]], stop: Callable[[], None]
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a long-lived service coroutine for the duration of a block; stop it and wait after."""
    task = asyncio.ensure_future(coro_factory())
    try:
        yield task
    finally:
        stop()
        try:
            await asyncio.wait_for(task, 30)
        except asyncio.CancelledError:
            pass


def seed_body() -> dict[str, Any]:
    """The API body of the product documentation, unchanged."""
    return {
        "name": "Deploy Application",
        "description": "Multi-step deployment workflow",
        "steps": [
            {"name": "run-tests", "type": "agent", "agent_id": "test-agent-uuid"},
            {"name": "build-image", "type": "agent", "agent_id": "builder-agent-uuid"},
            {"name": "deploy", "type": "agent", "agent_id": "deployer-agent-uuid"},
        ],
        "team_id": "team-uuid",
    }

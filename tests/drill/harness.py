"""Fault drills on a real local stack: every part a separate process with persistent data.

`DrillStack` starts Kafka (KRaft, data on disk), the Temporal dev server (SQLite file), and
`hookline gateway`, `hookline triggers` and `hookline worker` as processes, with one definition
whose single step records each time it starts and ends. `Drill.run` sends alerts the way
Alertmanager does (notifications of several alerts, anything but a 2xx retried with backoff),
does something to one part at a chosen moment (SIGKILL and restart, or SIGSTOP and SIGCONT),
waits until every run has completed, and accounts for every alert:

- runs:      runs of the drill definition that exist for this drill's alerts (one per alert)
- lost:      alerts with no completed run when the drill gives up waiting
- twice:     runs whose step started more than once (allowed only for steps in flight on a
             worker that died or froze, or while Temporal was down: their completion was lost)
- extra:     runs of the drill definition for no alert of this drill (a duplicate start)
- dlq:       records in the dead-letter topic

Used by tests/drill (the short drill in `make test`, all of it in `make drill`) and bench/storm.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml
from temporalio.client import Client

from gateway.sources.alertmanager import AlertmanagerSource
from hookline.definitions import DefinitionStore
from hookline.kafka import ensure_topics, read_topic
from hookline.processes import ManagedProcess, log_tail
from hookline.runs import workflow_id_for
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import KafkaServer, TemporalServer, free_port
from hookline.temporal import connect
from tests.notifications import notification

ROOT = Path(__file__).resolve().parents[2]
DEFINITION_ID = "drill"
COMPONENTS = ("gateway", "triggers", "worker")
Part = Literal["gateway", "triggers", "worker", "kafka", "temporal"]
Moment = Literal["early", "mid", "completing"]
Fault = Literal["kill", "stop"]
#: Starts of a component whose port another process took before it could listen on it.
_PORT_TRIES = 3

# The step: one line when it starts and one when it ends, appended (atomically: short lines).
RECORD = (
    'echo "start $HOOKLINE_WORKFLOW_ID" >> "$DRILL_LOG"; sleep 0.05; echo "end $HOOKLINE_WORKFLOW_ID" >> "$DRILL_LOG"'
)


def workflow_ids(doc: dict[str, Any]) -> list[str]:
    """The run ids Hookline must give the alerts of a notification (definition + dedupe key)."""
    events = AlertmanagerSource("alertmanager").parse(json.dumps(doc).encode(), {"Content-Type": "application/json"})
    return [workflow_id_for(DEFINITION_ID, e) for e in events]


def _lost_its_port(log: Path, since: int) -> bool:
    """Whether the component writing `log` exited (after byte `since`) because its port was taken."""
    if not log.exists():
        return False
    with log.open("rb") as f:
        f.seek(since)
        return b"address already in use" in f.read()


@dataclass
class DrillStack:
    """Kafka, Temporal and the three components as separate processes, data kept on disk."""

    base: Path
    kafka: KafkaServer = field(init=False)
    temporal: TemporalServer = field(init=False)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kafka = KafkaServer(
            self.base / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port(), heap="512m"
        )
        self.temporal = TemporalServer(self.base / "temporal", port=free_port(), db_file=self.base / "temporal.db")
        self.ports = {name: free_port() for name in COMPONENTS}

    @property
    def step_log(self) -> Path:
        return self.base / "steps.log"

    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.kafka.bootstrap_servers, topic_prefix="drill")

    @property
    def temporal_settings(self) -> TemporalSettings:
        return TemporalSettings(address=self.temporal.address, task_queue="drill")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    async def start(self) -> None:
        await asyncio.gather(self.kafka.start(), self.temporal.start())
        temporal = self.temporal_settings
        await ensure_topics(self.kafka_settings)
        store = DefinitionStore(self.kafka_settings)
        await store.start()
        try:
            await store.put(
                {
                    "id": DEFINITION_ID,
                    "name": "Drill",
                    "trigger": {"type": "webhook", "source": "alertmanager"},
                    "steps": [{"name": "record", "agent": "record"}],
                }
            )
        finally:
            await store.stop()
        agents = self.base / "agents.yaml"
        agents.write_text(yaml.safe_dump({"agents": {"record": {"command": ["sh", "-c", RECORD], "timeout_s": 60}}}))
        self.env = dict(
            os.environ,
            DRILL_LOG=str(self.step_log),
            HOOKLINE_KAFKA__BOOTSTRAP_SERVERS=self.kafka.bootstrap_servers,
            HOOKLINE_KAFKA__TOPIC_PREFIX="drill",
            HOOKLINE_TEMPORAL__ADDRESS=temporal.address,
            HOOKLINE_TEMPORAL__TASK_QUEUE=temporal.task_queue,
            HOOKLINE_AGENTS_FILE=str(agents),
            HOOKLINE_GATEWAY__PORT=str(self.ports["gateway"]),
            HOOKLINE_TRIGGERS__PORT=str(self.ports["triggers"]),
            HOOKLINE_TRIGGERS__TICKER="false",
            HOOKLINE_WORKER__PORT=str(self.ports["worker"]),
            HOOKLINE_WORKER__INHERIT_ENV='["PATH", "DRILL_LOG"]',
            HOOKLINE_LOG__LEVEL="warning",
            HOOKLINE_LOG__FORMAT="json",
        )
        for name in COMPONENTS:
            self.start_component(name)
        await self.until_ready()

    def start_component(self, name: str) -> None:
        process = self.processes.setdefault(name, ManagedProcess(name))
        process.spawn([sys.executable, "-m", "hookline.cli", name], self.base / f"{name}.log", self.env)

    async def until_ready(self, timeout: float = 90.0) -> None:
        """Every component answers /readyz with 200. One that exits first fails this at once with
        its log's tail, except when its port was taken meanwhile (another process's free port, as
        the other test worker's servers pick theirs): it starts again on a new one."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            for name in COMPONENTS:
                log, since = self.base / f"{name}.log", 0
                for attempt in itertools.count(1):
                    if await self._answers_ready(session, name, deadline):
                        break
                    process = self.processes[name]
                    if process.returncode is None:
                        raise TimeoutError(f"{name} not ready after {timeout:g}s; its log ({log}):\n{log_tail(log)}")
                    if attempt == _PORT_TRIES or not _lost_its_port(log, since):
                        process.check_alive(log)  # it exited: raises with its log's tail
                    since = log.stat().st_size
                    self.ports[name] = free_port()
                    self.env[f"HOOKLINE_{name.upper()}__PORT"] = str(self.ports[name])
                    self.start_component(name)

    async def _answers_ready(self, session: aiohttp.ClientSession, name: str, deadline: float) -> bool:
        """True once `name` answers /readyz with 200; False if it exits first or at the deadline."""
        url = f"http://127.0.0.1:{self.ports[name]}/readyz"
        while self.processes[name].returncode is None and time.monotonic() < deadline:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
        return False

    def pid(self, part: Part) -> int | None:
        if part == "kafka":
            return self.kafka.pid
        if part == "temporal":
            return self.temporal.pid
        return self.processes[part].pid

    def kill(self, part: Part) -> None:
        if part == "kafka":
            self.kafka.kill()
        elif part == "temporal":
            self.temporal.kill()
        else:
            self.processes[part].kill()

    async def restart(self, part: Part) -> None:
        if part == "kafka":
            await self.kafka.start()
        elif part == "temporal":
            await self.temporal.start()
        else:
            self.start_component(part)

    def rss_mb(self) -> dict[str, int]:
        """Resident memory of every running part, in MB."""
        pids = {name: self.pid(name) for name in (*COMPONENTS, "kafka", "temporal")}  # type: ignore[arg-type]
        sizes = {}
        for name, pid in pids.items():
            if pid is None:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[name] = int(line.split()[1]) // 1024
        return sizes

    def dead(self) -> list[str]:
        """Components that exited on their own."""
        return [name for name, p in self.processes.items() if p.pid is None]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.temporal.stop()
        self.kafka.stop()


@dataclass
class Outcome:
    part: str
    fault: str
    moment: str
    alerts: int
    runs: int
    lost: int
    twice: int
    extra: int
    completed: int
    dlq: int
    recover_s: float
    died: list[str]
    answers: Counter[int]

    def row(self) -> str:
        return (
            f"{self.part:<9}{self.fault:<6}{self.moment:<11}{self.alerts:>7}{self.runs:>6}{self.lost:>6}"
            f"{self.twice:>7}{self.extra:>7}{self.completed:>10}{self.dlq:>5}{self.recover_s:>10.1f}"
        )

    @staticmethod
    def header() -> str:
        return (
            f"{'part':<9}{'fault':<6}{'moment':<11}{'alerts':>7}{'runs':>6}{'lost':>6}{'twice':>7}{'extra':>7}"
            f"{'completed':>10}{'dlq':>5}{'recover s':>10}"
        )


@dataclass
class Drill:
    """One scenario on a running `DrillStack`."""

    stack: DrillStack
    notifications: int = 20
    alerts_per_notification: int = 10
    senders: int = 8
    down_s: float = 3.0
    frozen_s: float = 15.0
    settle_timeout_s: float = 180.0
    answered: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    client: Client | None = None

    async def _send(self, session: aiohttp.ClientSession, doc: dict[str, Any]) -> None:
        """As Alertmanager: retry whatever is not a 2xx, with backoff, until it is accepted."""
        delay = 0.2
        deadline = time.monotonic() + self.settle_timeout_s
        while True:
            try:
                async with session.post(
                    f"{self.stack.gateway_url}/hooks/alertmanager", json=doc, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    self.answers[response.status] += 1
                    if 200 <= response.status < 300:
                        self.answered += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                self.answers[0] += 1
            if time.monotonic() > deadline:
                raise TimeoutError("a notification was never accepted")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _send_all(self, docs: list[dict[str, Any]]) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for doc in docs:
            queue.put_nowait(doc)
        async with aiohttp.ClientSession() as session:

            async def sender() -> None:
                while not queue.empty():
                    await self._send(session, queue.get_nowait())

            await asyncio.gather(*(sender() for _ in range(self.senders)))

    def steps(self) -> tuple[Counter[str], Counter[str]]:
        starts: Counter[str] = Counter()
        ends: Counter[str] = Counter()
        if self.stack.step_log.exists():
            for line in self.stack.step_log.read_text().splitlines():
                what, _, wid = line.partition(" ")
                (starts if what == "start" else ends)[wid] += 1
        return starts, ends

    async def completed(self, ids: set[str]) -> set[str]:
        assert self.client is not None
        query = f"HooklineDefinitionId = '{DEFINITION_ID}' AND ExecutionStatus = 'Completed'"
        return {w.id async for w in self.client.list_workflows(query)} & ids

    async def all_runs(self) -> set[str]:
        assert self.client is not None
        return {w.id async for w in self.client.list_workflows(f"HooklineDefinitionId = '{DEFINITION_ID}'")}

    async def start_span(self, ids: set[str]) -> float:
        """Seconds from the first to the last start of the runs `ids`."""
        assert self.client is not None
        query = f"HooklineDefinitionId = '{DEFINITION_ID}'"
        times = [w.start_time.timestamp() async for w in self.client.list_workflows(query) if w.id in ids]
        return max(times) - min(times) if times else 0.0

    async def _moment_reached(self, moment: Moment, total: int, ids: set[str]) -> None:
        while True:
            if moment == "early" and self.answered >= max(1, total // 10):
                return
            if moment == "mid" and self.answered >= total // 2:
                return
            if moment == "completing" and self.answered >= total:
                _, ends = self.steps()
                if sum(1 for i in ids if ends[i]) >= len(ids) * 3 // 10:
                    return
            await asyncio.sleep(0.02)

    async def _fault(self, part: Part, fault: Fault) -> None:
        if fault == "kill":
            self.stack.kill(part)
            await asyncio.sleep(self.down_s)
            await self.stack.restart(part)
        else:
            pid = self.stack.pid(part)
            assert pid is not None, f"{part} is not running"
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(self.frozen_s)
            finally:
                os.kill(pid, signal.SIGCONT)

    async def run(
        self,
        part: Part | None,
        fault: Fault = "kill",
        moment: Moment = "mid",
        *,
        docs: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Send the alerts (`docs`, or `notifications` of `alerts_per_notification`), apply the
        fault at `moment`, wait for every run, account for all."""
        self.client = await connect(self.stack.temporal_settings)
        tag = uuid.uuid4().hex[:8]
        if docs is None:
            docs = [notification(self.alerts_per_notification, f"{tag}-{n}") for n in range(self.notifications)]
        ids = {wid for doc in docs for wid in workflow_ids(doc)}
        runs_before = await self.all_runs()
        dlq_before = await self.dlq_size()
        self.answered, self.answers = 0, Counter()
        sending = asyncio.create_task(self._send_all(docs))
        fault_at = time.monotonic()
        if part is not None:
            await self._moment_reached(moment, len(docs), ids)
            fault_at = time.monotonic()
            await self._fault(part, fault)
        await sending
        deadline = time.monotonic() + self.settle_timeout_s
        completed: set[str] = set()
        while time.monotonic() < deadline:
            completed = await self.completed(ids)
            if completed == ids:
                break
            await asyncio.sleep(0.5)
        recover_s = time.monotonic() - fault_at
        await asyncio.sleep(1.0)  # a duplicate start would show up now
        runs_after = await self.all_runs()
        new_runs = runs_after - runs_before
        starts, _ = self.steps()
        return Outcome(
            part=part or "none",
            fault=fault if part else "-",
            moment=moment if part else "-",
            alerts=len(ids),
            runs=len(new_runs & ids),
            lost=len(ids - completed),
            twice=sum(1 for i in ids if starts[i] > 1),
            extra=len(new_runs - ids),
            completed=len(completed),
            dlq=await self.dlq_size() - dlq_before,
            recover_s=recover_s,
            died=self.stack.dead(),
            answers=self.answers,
        )

    async def dlq_size(self) -> int:
        """The records in the dead-letter topic now."""
        settings = self.stack.kafka_settings
        return len([record async for record in read_topic(settings, settings.dlq_topic)])

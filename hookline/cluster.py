"""The production topology on one machine (`make cluster`; tests/cluster's drill): a Kafka cluster
of three KRaft nodes, the Temporal server proper (frontend, history, matching and worker services,
each a process of its own) on PostgreSQL, and two of each Hookline component.

Built from the pieces of `hookline.stack`: the brokers are `KafkaServer`s with a cluster's
configuration, every process a `ManagedProcess` that dies with its parent. The Temporal server and
its SQL tool are built from their Go module with `go install` once and cached under the cache dir
(`ensure_temporal_server`), like the Kafka jars; PostgreSQL is Debian's (`postgresql`), run from a
data directory of its own as the `postgres` user when we are root (it refuses to run as root).
Every port is a free one on 127.0.0.1. docs/cluster.md tells the topology and what the drill showed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hookline.definitions import DefinitionStore
from hookline.kafka import ensure_topics
from hookline.processes import ManagedProcess, StackError
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import TRANSFER_QUEUE_READS_PER_S, KafkaServer, ensure_kafka_jars, free_port
from hookline.temporal import register_search_attributes, wait_for_temporal
from hookline.topics import replication

__all__ = [
    "COMPONENTS",
    "TEMPORAL_SERVER_VERSION",
    "TEMPORAL_SERVICES",
    "ClusterBroker",
    "ClusterStack",
    "Component",
    "KafkaCluster",
    "PostgresServer",
    "TemporalCluster",
    "ensure_temporal_server",
    "free_low_port",
    "postgres_server",
]

#: The newest go.temporal.io/server that builds with the machine's Go (1.26.8): v1.32.2 and the
#: v1.30/v1.31 patch releases ask for Go 1.26.10.
TEMPORAL_SERVER_VERSION = "v1.32.1"
TEMPORAL_SERVICES = ("frontend", "history", "matching", "worker")
COMPONENTS = ("gateway", "triggers", "worker")


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"`{tool}` is not installed or not on PATH; {hint}")
    return path


def go_environment(cache_dir: Path, gobin: Path) -> dict[str, str]:
    """The environment `go install` builds in: the module and build caches under the cache dir
    (shared with the other Go tools built there), the machine's own Go (no toolchain download)."""
    cache_dir = cache_dir.resolve()
    return dict(
        os.environ,
        GOBIN=str(gobin),
        GOMODCACHE=str(cache_dir / "go" / "mod"),
        GOCACHE=str(cache_dir / "go" / "build"),
        GOFLAGS="-modcacherw",
        GOTOOLCHAIN="local",
    )


def ensure_temporal_server(cache_dir: Path, version: str = TEMPORAL_SERVER_VERSION, *, quiet: bool = True) -> Path:
    """The folder holding `server` and `sql` (Temporal's SQL schema tool) of `version`, built with
    `go install` the first time (about 5 minutes on 2 cores with the module cache empty);
    later calls reuse it. The build takes both cores: `make temporal-server` holds the suite's
    lock while it runs."""
    gobin = cache_dir.resolve() / "temporal" / version / "bin"
    stamp = gobin / ".complete"
    if stamp.exists():
        return gobin
    go = _require("go", "install Go (Debian: apt-get install golang) to build the Temporal server")
    gobin.mkdir(parents=True, exist_ok=True)
    cmd = [
        go,
        "install",
        f"go.temporal.io/server/cmd/server@{version}",
        f"go.temporal.io/server/cmd/tools/sql@{version}",
    ]
    result = subprocess.run(  # noqa: S603 - the machine's go, our own arguments
        cmd, env=go_environment(cache_dir, gobin), capture_output=quiet, text=True, check=False, cwd=cache_dir
    )
    if result.returncode != 0:
        raise StackError(f"go install of the Temporal server {version} failed:\n{result.stdout}{result.stderr}")
    stamp.write_text(version)
    return gobin


def free_low_port() -> int:
    """A free port on 127.0.0.1 below 32768: Temporal keeps its services' membership ports in a
    PostgreSQL smallint, which the ephemeral range (32768 and up, where `free_port`'s come
    from) overflows."""
    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise StackError("no free port between 20000 and 32767 on 127.0.0.1")


async def _listening(port: int) -> bool:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    return True


def _postgres_bindir() -> Path:
    """The newest PostgreSQL installed (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    postgres = _require("postgres", "install PostgreSQL (Debian: apt-get install postgresql; `make cluster` does)")
    return Path(postgres).parent


def _as_postgres_user() -> list[str]:
    """The prefix that runs a PostgreSQL program as `postgres` when we are root: initdb and the
    server refuse to run as root. Nothing when we are not."""
    if os.geteuid() != 0:
        return []
    setpriv = _require("setpriv", "install util-linux")
    return [setpriv, "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


def _owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


async def _until(check: Any, what: str, timeout: float, pause: float = 0.25) -> Any:
    """Call `check()` (a coroutine function) until it returns something true; TimeoutError after
    `timeout`, with the last exception."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = await check()
            if result:
                return result
        except Exception as exc:  # each attempt may fail until the thing is up
            last = exc
        await asyncio.sleep(pause)
    raise TimeoutError(f"{what} not after {timeout:g}s" + (f": {last}" if last else ""))


@dataclass
class PostgresServer:
    """Debian's PostgreSQL on a data directory of its own, listening on 127.0.0.1:`port` (and a
    Unix socket in the data directory). As root, `data_dir` and its parents must let the
    `postgres` user in: the directory is handed to it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    log_file: Path | None = None  # default: postgres.log beside the data directory
    user: str = "temporal"
    password: str = "temporal"  # noqa: S105 - a server on loopback that only this stack's Temporal uses
    _process: ManagedProcess = field(default_factory=lambda: ManagedProcess("PostgreSQL"))

    @property
    def log_path(self) -> Path:
        return self.log_file or self.data_dir.parent / "postgres.log"

    async def start(self, timeout: float = 60.0) -> None:
        bindir = _postgres_bindir()
        as_postgres = _as_postgres_user()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _owned_by_postgres(self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            pwfile = self.data_dir.parent / ".postgres-password"  # initdb wants an empty data dir
            pwfile.write_text(self.password + "\n")
            _owned_by_postgres(pwfile)
            result = await asyncio.to_thread(
                subprocess.run,
                [
                    *as_postgres,
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            pwfile.unlink()
            if result.returncode != 0:
                raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")
        argv = [
            *as_postgres,
            str(bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            # Four Temporal services with pools of 20 (see TemporalCluster) and the schema tool.
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]
        self._process.spawn(argv, self.log_path)
        isready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]

        async def ready() -> bool:
            done = await asyncio.to_thread(subprocess.run, isready, check=False, capture_output=True)
            return done.returncode == 0

        await self._process.until_ready(_until(ready, "PostgreSQL ready", timeout), self.log_path)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def stop(self) -> None:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to leave;
        # SIGINT ("fast") ends their sessions and stops at once.
        if self._process.proc is not None and self._process.proc.poll() is None:
            self._process.proc.send_signal(signal.SIGINT)
        self._process.stop()


def postgres_server(base: Path) -> tuple[PostgresServer, Path | None]:
    """A `PostgresServer` for a stack in `base` (its log there), and the folder its data is in
    when that is not under `base`, for the caller to remove once it has stopped the server: as
    root the server runs as `postgres`, which must be let into every parent of its data
    directory, so the data goes to a folder of its own under /tmp (pytest's are closed to other
    users)."""
    if os.geteuid() == 0:
        root = Path(tempfile.mkdtemp(prefix="hookline-postgres-"))
        root.chmod(0o711)
        return PostgresServer(root / "data", log_file=base / "postgres.log"), root
    return PostgresServer(base / "postgres" / "data", log_file=base / "postgres.log"), None


@dataclass
class TemporalCluster:
    """The Temporal server proper, each of its four services a process, on PostgreSQL: the
    databases and their schemas are set up with Temporal's SQL tool on first start, the namespace
    is registered and given Hookline's search attributes."""

    base: Path
    cache_dir: Path
    postgres: PostgresServer
    namespace: str = "default"
    retention_days: int = 1
    history_shards: int = 4
    version: str = TEMPORAL_SERVER_VERSION
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for service in TEMPORAL_SERVICES:
            self.ports.setdefault(f"{service}.grpc", free_low_port())
            self.ports.setdefault(f"{service}.membership", free_low_port())
        self.ports.setdefault("frontend.http", free_low_port())
        for service in TEMPORAL_SERVICES:
            self.processes.setdefault(service, ManagedProcess(f"Temporal {service}"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['frontend.grpc']}"

    @property
    def config_path(self) -> Path:
        return self.base / "config.yaml"

    def log_path(self, service: str) -> Path:
        return self.base / f"{service}.log"

    def pid(self, service: str) -> int | None:
        return self.processes[service].pid

    def config(self) -> dict[str, Any]:
        """The server's configuration: config/development-postgres12.yaml of the module, with our
        ports, PostgreSQL and no metrics, pprof or archival."""

        def store(database: str, conns: int) -> dict[str, Any]:
            return {
                "sql": {
                    "pluginName": "postgres12",
                    "databaseName": database,
                    "connectAddr": f"127.0.0.1:{self.postgres.port}",
                    "connectProtocol": "tcp",
                    "user": self.postgres.user,
                    "password": self.postgres.password,
                    "maxConns": conns,
                    "maxIdleConns": conns,
                    "maxConnLifetime": "1h",
                }
            }

        services = {
            service: {
                "rpc": {
                    "grpcPort": self.ports[f"{service}.grpc"],
                    "membershipPort": self.ports[f"{service}.membership"],
                    "bindOnLocalHost": True,
                }
            }
            for service in TEMPORAL_SERVICES
        }
        services["frontend"]["rpc"]["httpPort"] = self.ports["frontend.http"]
        return {
            "log": {"stdout": True, "level": "warn"},
            "persistence": {
                "defaultStore": "postgres-default",
                "visibilityStore": "postgres-visibility",
                "numHistoryShards": self.history_shards,
                "datastores": {
                    "postgres-default": store("temporal", 20),
                    "postgres-visibility": store("temporal_visibility", 10),
                },
            },
            "global": {"membership": {"maxJoinDuration": "30s", "broadcastAddress": "127.0.0.1"}},
            "services": services,
            "clusterMetadata": {
                "enableGlobalNamespace": False,
                "failoverVersionIncrement": 10,
                "masterClusterName": "active",
                "currentClusterName": "active",
                "clusterInformation": {
                    "active": {
                        "enabled": True,
                        "initialFailoverVersion": 1,
                        "rpcName": "frontend",
                        "rpcAddress": self.address,
                    }
                },
            },
            "dcRedirectionPolicy": {"policy": "noop"},
            "dynamicConfigClient": {"filepath": str(self.base / "dynamicconfig.yaml"), "pollInterval": "10s"},
        }

    def dynamic_config(self) -> dict[str, Any]:
        """As the dev server: search attributes usable as soon as they are added, namespaces
        known to every service within a second of their registration, and each shard's transfer
        queue read as often as the dev server's (`TRANSFER_QUEUE_READS_PER_S`)."""
        return {
            "system.forceSearchAttributesCacheRefreshOnRead": [{"value": True, "constraints": {}}],
            "history.transferProcessorMaxPollRPS": [{"value": TRANSFER_QUEUE_READS_PER_S, "constraints": {}}],
            "system.namespaceCacheRefreshInterval": [{"value": "1s", "constraints": {}}],
            "frontend.enableUpdateWorkflowExecution": [{"value": True, "constraints": {}}],
        }

    def _sql_tool(self, database: str, *args: str) -> list[str]:
        bindir = ensure_temporal_server(self.cache_dir, self.version)
        return [
            str(bindir / "sql"),
            "--plugin",
            "postgres12",
            "--ep",
            "127.0.0.1",
            "--port",
            str(self.postgres.port),
            "--user",
            self.postgres.user,
            "--password",
            self.postgres.password,
            "--db",
            database,
            *args,
        ]

    async def setup_schema(self) -> None:
        """Create both databases and bring their schemas to the version the server embeds (each
        step is a no-op when already done)."""
        for database, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
            steps: list[Sequence[str]] = []
            stamp = self.base / f".schema-{database}"
            if not stamp.exists():
                steps += [("create-database",), ("setup-schema", "-v", "0.0")]
            steps.append(("update-schema", "--schema-name", f"postgresql/v12/{schema}"))
            for step in steps:
                result = await asyncio.to_thread(
                    subprocess.run, self._sql_tool(database, *step), capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    raise StackError(
                        f"temporal sql {' '.join(step)} on {database} failed:\n{result.stdout}{result.stderr}"
                    )
            stamp.touch()

    def start_service(self, service: str) -> None:
        server = ensure_temporal_server(self.cache_dir, self.version) / "server"
        argv = [str(server), "--config-file", str(self.config_path), "--allow-no-auth", "start", "--service", service]
        self.processes[service].spawn(argv, self.log_path(service))

    async def start(self, timeout: float = 120.0) -> None:
        await asyncio.to_thread(ensure_temporal_server, self.cache_dir, self.version)
        self.base.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        (self.base / "dynamicconfig.yaml").write_text(yaml.safe_dump(self.dynamic_config(), sort_keys=False))
        await self.setup_schema()
        await self.start_services(timeout)
        await self.prepare_namespace(timeout)

    async def start_services(self, timeout: float = 120.0) -> None:
        """History first, alone until it serves: the first service to start writes the cluster's
        metadata, and several starting at once on a new database race to write it and all but one
        exit. Then the others; returns once the frontend answers."""
        self.start_service("history")
        await self._until_listening("history", timeout)
        for service in TEMPORAL_SERVICES:
            if service != "history":
                self.start_service(service)
        await self.until_serving(timeout)

    async def _until_listening(self, service: str, timeout: float) -> None:
        port = self.ports[f"{service}.grpc"]
        await self.processes[service].until_ready(
            _until(lambda: _listening(port), f"Temporal {service} listening on {port}", timeout), self.log_path(service)
        )

    async def until_serving(self, timeout: float = 120.0) -> None:
        """The frontend answers its health check, every service still running."""
        waiter = asyncio.ensure_future(wait_for_temporal(self.address, timeout))
        try:
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=0.5)
                for service, process in self.processes.items():
                    process.check_alive(self.log_path(service))
            await waiter
        finally:
            waiter.cancel()

    async def prepare_namespace(self, timeout: float = 60.0) -> None:
        """Register the namespace (the server proper has none until then), wait until it can be
        used, and add Hookline's search attributes."""
        from google.protobuf.duration_pb2 import Duration
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
        from temporalio.client import Client
        from temporalio.service import RPCError, RPCStatusCode

        client = await Client.connect(self.address, namespace=self.namespace)
        try:
            await client.workflow_service.register_namespace(
                RegisterNamespaceRequest(
                    namespace=self.namespace,
                    workflow_execution_retention_period=Duration(seconds=self.retention_days * 86400),
                )
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise

        async def described() -> bool:
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=self.namespace))
            return True

        await _until(described, f"namespace {self.namespace}", timeout)

        async def registered() -> bool:
            await register_search_attributes(client, self.namespace)
            return True

        await _until(registered, "Hookline's search attributes", timeout, pause=1.0)

    def kill(self, service: str) -> None:
        self.processes[service].kill()

    def stop(self) -> None:
        for service in reversed(TEMPORAL_SERVICES):
            with contextlib.suppress(Exception):
                self.processes[service].stop()

    async def stop_services(self, grace_s: float = 20.0) -> None:
        """Every service sent SIGTERM at once, and SIGKILL if it is still there after `grace_s`."""
        await asyncio.gather(*(self.processes[s].terminate(grace_s) for s in TEMPORAL_SERVICES))

    async def restart(self, timeout: float = 120.0) -> None:
        """Every service stopped (SIGTERM, as a deployment's restart does) and started again;
        returns once the frontend serves again."""
        await self.stop_services()
        await self.start_services(timeout)


@dataclass
class ClusterBroker(KafkaServer):
    """One node of a KRaft cluster, broker and controller both, the controllers a static quorum
    (`voters`, e.g. `1@127.0.0.1:9093,2@...`). Internal topics are replicated as Hookline's are
    (`hookline.topics.replication` for the cluster's `size`)."""

    node_id: int = 1
    voters: str = ""
    size: int = 3

    def _write_config(self) -> Path:
        copies = replication(self.size)
        config = self.data_dir / "server.properties"
        lines = [
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"controller.quorum.voters={self.voters}",
            f"log.dirs={self.data_dir / 'data'}",
            f"num.partitions={self.partitions}",
            f"default.replication.factor={copies.factor}",
            f"min.insync.replicas={copies.min_insync}",
            f"offsets.topic.replication.factor={copies.factor}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={copies.factor}",
            f"transaction.state.log.min.isr={copies.min_insync}",
            f"share.coordinator.state.topic.replication.factor={copies.factor}",
            f"share.coordinator.state.topic.min.isr={copies.min_insync}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
        config.write_text("\n".join(lines))
        return config

    def _format_options(self) -> list[str]:
        return []  # the quorum is the static one of controller.quorum.voters


@dataclass
class KafkaCluster:
    """`size` KRaft nodes (each broker and controller) on 127.0.0.1, one cluster id."""

    base: Path
    cache_dir: Path
    size: int = 3
    heap: str = "384m"
    partitions: int = 6
    brokers: list[ClusterBroker] = field(init=False)

    def __post_init__(self) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        controllers = [free_port() for _ in range(self.size)]
        voters = ",".join(f"{n + 1}@127.0.0.1:{port}" for n, port in enumerate(controllers))
        self.brokers = [
            ClusterBroker(
                self.base / f"kafka-{n + 1}",
                self.cache_dir,
                port=free_port(),
                controller_port=controllers[n],
                heap=self.heap,
                partitions=self.partitions,
                cluster_id=cluster_id,
                node_id=n + 1,
                voters=voters,
                size=self.size,
                _process=ManagedProcess(f"Kafka {n + 1}"),
            )
            for n in range(self.size)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.bootstrap_servers for b in self.brokers)

    def broker(self, node_id: int) -> ClusterBroker:
        return self.brokers[node_id - 1]

    async def start(self, timeout: float = 120.0) -> None:
        await asyncio.to_thread(ensure_kafka_jars, self.cache_dir)
        # Together: a node answers only once a majority of the controllers has formed the quorum.
        await asyncio.gather(*(b.start(timeout) for b in self.brokers))
        await self.until_registered(self.size, timeout)

    async def _admin(self) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000)
        await admin.start()
        return admin

    async def registered(self) -> set[int]:
        """The ids of the brokers the cluster's metadata lists (the live, unfenced ones)."""
        admin = await self._admin()
        try:
            return {b["node_id"] for b in (await admin.describe_cluster())["brokers"]}
        finally:
            await admin.close()

    async def until_registered(self, count: int, timeout: float = 60.0) -> None:
        async def enough() -> bool:
            return len(await self.registered()) >= count

        await _until(enough, f"{count} Kafka brokers registered", timeout, pause=0.5)

    async def partitions_of(self, topics: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every partition of `topics` (None: every topic, the internal ones included), each with
        its topic, leader, replicas and in-sync replicas."""
        admin = await self._admin()
        try:
            described = await admin.describe_topics(list(topics) if topics is not None else None)
        finally:
            await admin.close()
        return [{"topic": t["topic"], **p} for t in described for p in t["partitions"]]

    async def leader_of_most_partitions(self) -> int:
        """The node that leads the most partitions, internal topics included (the group and
        transaction coordinators live on them)."""
        leaders = Counter(p["leader"] for p in await self.partitions_of() if p["leader"] >= 0)
        return int(leaders.most_common(1)[0][0])

    def stop(self) -> None:
        """Every broker stopped (SIGTERM) at once: one at a time, each waits for the others to
        take over its partitions."""
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            for broker in self.brokers:
                pool.submit(broker.stop)

    def kill(self) -> None:
        for broker in self.brokers:
            with contextlib.suppress(Exception):
                broker.kill()


@dataclass
class Component:
    """One process of a Hookline component (`hookline gateway|triggers|worker`)."""

    kind: str
    index: int
    port: int
    process: ManagedProcess

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ClusterStack:
    """PostgreSQL, the Temporal server's four services, a Kafka cluster and `replicas` processes
    of each Hookline component (one consumer group for the triggers, one task queue for the
    workers), every one a process of its own. Started and stopped as one; each part can be
    killed on its own (the drill)."""

    base: Path
    cache_dir: Path
    brokers: int = 3
    replicas: int = 2
    kafka_heap: str = "384m"
    topic_prefix: str = "hookline"
    task_queue: str = "hookline"
    events_partitions: int = 6
    agents_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    kafka: KafkaCluster = field(init=False)
    postgres: PostgresServer = field(init=False)
    temporal: TemporalCluster = field(init=False)
    components: dict[str, Component] = field(default_factory=dict)
    _postgres_root: Path | None = None

    def __post_init__(self) -> None:
        self.base = self.base.resolve()
        self.kafka = KafkaCluster(
            self.base / "kafka", self.cache_dir, self.brokers, self.kafka_heap, self.events_partitions
        )
        self.postgres, self._postgres_root = postgres_server(self.base)
        self.temporal = TemporalCluster(self.base / "temporal", self.cache_dir, self.postgres)
        for kind in COMPONENTS:
            for index in range(1, self.replicas + 1):
                component = Component(kind, index, free_port(), ManagedProcess(f"{kind}-{index}"))
                self.components[component.name] = component

    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.kafka.bootstrap_servers,
            topic_prefix=self.topic_prefix,
            events_partitions=self.events_partitions,
        )

    @property
    def temporal_settings(self) -> TemporalSettings:
        return TemporalSettings(address=self.temporal.address, task_queue=self.task_queue)

    def of(self, kind: str) -> list[Component]:
        return [c for c in self.components.values() if c.kind == kind]

    @property
    def gateway_urls(self) -> list[str]:
        return [c.url for c in self.of("gateway")]

    def component_env(self, component: Component) -> dict[str, str]:
        env = dict(
            os.environ,
            HOOKLINE_KAFKA__BOOTSTRAP_SERVERS=self.kafka.bootstrap_servers,
            HOOKLINE_KAFKA__TOPIC_PREFIX=self.topic_prefix,
            HOOKLINE_KAFKA__EVENTS_PARTITIONS=str(self.events_partitions),
            # Each process is told apart in the brokers' view of their clients and groups.
            HOOKLINE_KAFKA__CLIENT_ID=component.name,
            HOOKLINE_TEMPORAL__ADDRESS=self.temporal.address,
            HOOKLINE_TEMPORAL__TASK_QUEUE=self.task_queue,
        )
        env[f"HOOKLINE_{component.kind.upper()}__PORT"] = str(component.port)
        if self.agents_file is not None:
            env["HOOKLINE_AGENTS_FILE"] = str(self.agents_file)
        # `{name}` in a value of `env` is the process's name (e.g. a file of its own).
        env.update({key: value.replace("{name}", component.name) for key, value in self.env.items()})
        return env

    def start_component(self, name: str) -> None:
        component = self.components[name]
        component.process.spawn(
            [sys.executable, "-m", "hookline.cli", component.kind],
            self.base / f"{name}.log",
            self.component_env(component),
        )

    async def start(self, definitions: Sequence[Mapping[str, Any]] = (), definitions_dir: Path | None = None) -> None:
        """Everything, in order: PostgreSQL and Kafka, Temporal, Hookline's topics and the
        `definitions` (and those in `definitions_dir`), then the components; returns once every
        component is ready."""
        self.base.mkdir(parents=True, exist_ok=True)
        try:

            async def temporal() -> None:
                await self.postgres.start()
                await self.temporal.start()

            await asyncio.gather(self.kafka.start(), temporal())
            await ensure_topics(self.kafka_settings)
            if definitions or definitions_dir is not None:
                store = DefinitionStore(self.kafka_settings)
                await store.start()
                try:
                    for definition in definitions:
                        await store.put(dict(definition), author="hookline cluster")
                    if definitions_dir is not None:
                        await store.apply_directory(definitions_dir)
                finally:
                    await store.stop()
            for name in self.components:
                self.start_component(name)
            await self.until_ready()
        except BaseException:
            self.stop()
            raise

    async def until_ready(self, timeout: float = 120.0) -> None:
        """Every running component answers /readyz with 200."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            for component in self.components.values():
                if component.process.pid is None:
                    continue

                async def ready(component: Component = component) -> bool:
                    component.process.check_alive(self.base / f"{component.name}.log")
                    async with session.get(f"{component.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        return r.status == 200

                await _until(ready, f"{component.name} ready", timeout, pause=0.2)

    def dead(self) -> list[str]:
        """Components that exited on their own (a killed one is stopped, not dead)."""
        return [name for name, c in self.components.items() if c.process.proc is not None and c.process.pid is None]

    def stop(self) -> None:
        for component in self.components.values():
            with contextlib.suppress(Exception):
                component.process.stop()
        self.temporal.stop()
        self.kafka.stop()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        if self._postgres_root is not None:
            shutil.rmtree(self._postgres_root, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL everything (its data is thrown away), but PostgreSQL, which is stopped fast."""
        for component in self.components.values():
            with contextlib.suppress(Exception):
                component.process.kill()
        for service in TEMPORAL_SERVICES:
            with contextlib.suppress(Exception):
                self.temporal.kill(service)
        self.kafka.kill()
        with contextlib.suppress(Exception):
            self.postgres.stop()
        if self._postgres_root is not None:
            shutil.rmtree(self._postgres_root, ignore_errors=True)


async def serve(data_dir: Path, cache_dir: Path, config: Path, definitions_dir: Path | None) -> None:
    """`make cluster`: the cluster with the settings of `config` (e.g. examples/hookline.yaml: its
    sources, tokens and agents) and the definitions of `definitions_dir`, until SIGINT or SIGTERM.
    The addresses are printed and written to
    `data_dir`/cluster.json."""
    import json

    stack = ClusterStack(data_dir, cache_dir, env={"HOOKLINE_CONFIG": str(config)})
    started = time.monotonic()
    await stack.start(definitions_dir=definitions_dir)
    addresses = {
        "kafka": stack.kafka.bootstrap_servers,
        "temporal": stack.temporal.address,
        "postgres": f"127.0.0.1:{stack.postgres.port}",
        **{name: c.url for name, c in stack.components.items()},
    }
    (stack.base / "cluster.json").write_text(json.dumps(addresses, indent=2) + "\n")
    rows = [
        ("Kafka", f"{stack.kafka.bootstrap_servers}  ({stack.brokers} KRaft nodes, broker and controller each)"),
        ("Temporal", f"{stack.temporal.address}  (frontend; history, matching, worker {stack.temporal.version})"),
        ("PostgreSQL", addresses["postgres"]),
        *((kind, "  ".join(c.url for c in stack.of(kind))) for kind in COMPONENTS),
    ]
    print(f"Hookline cluster up in {time.monotonic() - started:.0f}s; data and logs in {stack.base}", flush=True)
    for what, where in rows:
        print(f"  {what:<11}{where}", flush=True)
    print("Alertmanager: POST <gateway>/hooks/alertmanager to either gateway. Ctrl-C stops it all.", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        print("stopping the cluster", flush=True)
        await asyncio.to_thread(stack.stop)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m hookline.cluster", description=(serve.__doc__ or "") + " Every run starts afresh."
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".data/cluster"))
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--config", type=Path, default=Path("examples/hookline.yaml"))
    parser.add_argument("--definitions", type=Path, default=Path("examples/workflows"))
    args = parser.parse_args(argv)
    from hookline.logging import configure_logging
    from hookline.settings import LogSettings

    configure_logging(LogSettings(level="warning", format="console"), "cluster")
    shutil.rmtree(args.data_dir, ignore_errors=True)
    asyncio.run(serve(args.data_dir, args.cache_dir, args.config.resolve(), args.definitions))


if __name__ == "__main__":
    main()

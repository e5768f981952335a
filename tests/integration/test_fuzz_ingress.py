"""Fuzzing the webhook ingress over real HTTP: a real gateway process with a source of every
kind, producing to the session's Kafka, and a real triggers process consuming what it accepts
(so the hostile events that get through reach the triggers too). Every answer is 2xx, 4xx or
503, never another 5xx or a dropped connection; afterwards both processes are alive, ready, and
the triggers have consumed every accepted event.

The requests come from `fuzz_requests` (derandomized: the same requests on every run of one
Hypothesis version, timestamps aside), made while the processes start, then sent `CONCURRENCY`
at a time over one client session.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from yarl import URL

from hookline.definitions import DefinitionStore
from hookline.processes import log_tail
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from tests.conftest import EXAMPLES, ROOT, read_topic
from tests.eventually import eventually
from tests.integration.fuzz_requests import ORDER_SCHEMA, Request, requests, sources

REQUESTS_WANTED = 10_000
#: Requests on their way at once: enough to keep the gateway busy on two cores.
CONCURRENCY = 32
#: Answers that keep the ingress's promise: accepted, refused with the reason, or "try again".
FINE = {*range(200, 300), *range(400, 500), 503}

#: Definitions the triggers hold while the fuzzer runs: one starts a run for every accepted
#: event of every source (its input rendered from the event), one evaluates a JMESPath filter
#: and an `inputs` schema over every event's data, and matches almost none.
DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "Fuzz Everything",
        "trigger": [
            {"type": "webhook", "source": name, "input": {"type": "${{ type }}", "labels": "${{ labels }}"}}
            for name in sources()
        ],
        "steps": [{"name": "analyse", "agent": "analyzer"}],
    },
    {
        "name": "Fuzz Filtered",
        "trigger": [
            {
                "type": "webhook",
                "source": name,
                "filter": {
                    "match": ['severity=~"crit.*|page"'],
                    "expression": "length(keys(data)) > `2` && type != 'x'",
                },
            }
            for name in sources()
        ],
        "inputs": {
            "type": "object",
            "properties": {"alert": {"type": "object", "properties": {"fingerprint": {"pattern": "^(a+)+$"}}}},
        },
        "steps": [{"name": "notify", "agent": "notifier"}],
    },
]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    base: str
    log: Path

    def tail(self) -> str:
        return log_tail(self.log)


def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hookline.cli", *args], env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def wait_ready(session: aiohttp.ClientSession, process: Process, timeout: float = 60.0) -> None:
    async def ready() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        async with session.get(f"{process.base}/readyz") as answer:
            return answer.status == 200

    def what() -> str:
        return f"{process.name} to be ready; its log:\n{process.tail()}"

    await eventually(ready, what, timeout=timeout, interval=0.2, retrying=aiohttp.ClientError)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # Idle connections are dropped well before the gateway's keep-alive timeout closes them, so a
    # close racing a new request never looks like a dropped connection.
    connector = aiohttp.TCPConnector(limit=CONCURRENCY, keepalive_timeout=3)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        yield client


@pytest.fixture
def gateway_process(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, tmp_path: Path
) -> Iterator[Process]:
    schema = tmp_path / "order.schema.json"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    configured = sources()
    configured["orders"]["schema_file"] = str(schema)
    port = free_port()
    config = {
        "kafka": kafka_settings.model_dump(mode="json"),
        "temporal": temporal_settings.model_dump(mode="json"),
        "log": {"format": "json", "level": "warning"},
        "agents_file": str(EXAMPLES / "agents.yaml"),
        "gateway": {"port": port, "max_body_bytes": 64 * 1024, "read_timeout_s": 10, "sources": configured},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "gateway.log"
    popen = spawn("gateway", ["gateway", "--config", str(path)], {}, log)
    try:
        yield Process("gateway", popen, f"http://127.0.0.1:{port}", log)
    finally:
        stop(popen)


@pytest.fixture
async def triggers_process(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, tmp_path: Path, unique: str
) -> AsyncIterator[Process]:
    store = DefinitionStore(kafka_settings)
    await store.start()
    try:
        for definition in DEFINITIONS:
            await store.create(definition)
    finally:
        await store.stop()
    port = free_port()
    env = {
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "HOOKLINE_KAFKA__TOPIC_PREFIX": kafka_settings.topic_prefix,
        "HOOKLINE_TEMPORAL__ADDRESS": temporal_settings.address,
        "HOOKLINE_TEMPORAL__TASK_QUEUE": temporal_settings.task_queue,
        "HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX": temporal_settings.runner_queue_prefix,
        "HOOKLINE_TRIGGERS__GROUP_ID": unique,
        "HOOKLINE_TRIGGERS__PORT": str(port),
        "HOOKLINE_TRIGGERS__TICKER": "false",
        "HOOKLINE_AGENTS_FILE": str(EXAMPLES / "agents.yaml"),
        "HOOKLINE_LOG__FORMAT": "json",
        "HOOKLINE_LOG__LEVEL": "warning",
    }
    log = tmp_path / "triggers.log"
    popen = spawn("triggers", ["triggers"], env, log)
    try:
        yield Process("triggers", popen, f"http://127.0.0.1:{port}", log)
    finally:
        stop(popen)


async def raw_exchange(base: URL, request: Request) -> int:
    """Send `request` over a socket of its own, header bytes exactly as generated; the answer's
    status (0: the connection was dropped without one). The answer is read while the body is
    still going out: a server may answer (413, or 400 for a header line over its limit) and close
    before it has read the body, and the rest of the body then only meets a reset."""
    reader, writer = await asyncio.open_connection(base.host, base.port)
    try:
        head = [f"{request.method} {request.path} HTTP/1.1".encode(), f"Host: {base.host}:{base.port}".encode()]
        head += [name.encode() + b": " + (v if isinstance(v, bytes) else v.encode()) for name, v in request.headers]
        framing = b"Transfer-Encoding: chunked" if request.chunked else b"Content-Length: %d" % len(request.body)
        # Keep-alive, as real senders do: the server then reads (and drops) a body it answered
        # early (401, 413) instead of closing on it.
        head.append(framing)
        writer.write(b"\r\n".join(head) + b"\r\n\r\n")
        answer = asyncio.ensure_future(asyncio.wait_for(reader.readline(), 30))
        try:
            if request.chunked:
                for i in range(0, len(request.body), 16 * 1024):
                    chunk = request.body[i : i + 16 * 1024]
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(request.body)
            await writer.drain()
        except ConnectionError:
            pass  # the server stopped reading: its answer may be there all the same
        try:
            line = await answer
        except ConnectionError:
            return 0
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    finally:
        writer.close()


async def exchange(session: aiohttp.ClientSession, base: URL, request: Request) -> int | str:
    """The status of the answer to `request`, or what went wrong instead of an answer."""
    try:
        if request.raw:
            return await raw_exchange(base, request)
        async with session.request(
            request.method,
            base.join(URL(request.path, encoded=True)),
            data=request.body,
            headers=[(k, v) for k, v in request.headers if isinstance(v, str)],
            skip_auto_headers=["Content-Type"],
        ) as answer:
            await answer.read()
            return answer.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def wait_consumed(kafka: KafkaSettings, triggers: Process, group: str, timeout: float) -> None:
    """Wait until the triggers' group has committed every partition of the events topic up to the
    last accepted event."""
    records = await read_topic(kafka, kafka.events_topic)
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()

    async def behind() -> dict[int, tuple[int, int]]:
        """The partitions not committed up to their end: partition → (committed, end)."""
        offsets = await admin.list_consumer_group_offsets(group)
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == kafka.events_topic}
        return {p: (committed.get(p, -1), end) for p, end in ends.items() if committed.get(p, -1) < end}

    def what() -> str:
        return (
            f"the triggers to consume every accepted event (partition: (committed, end)); its log:\n{triggers.tail()}"
        )

    try:
        await eventually(behind, what, until=lambda late: not late, timeout=timeout, interval=0.5)
    finally:
        await admin.close()


# ~20 s on a quiet 2-core machine; room for a busy one beyond the suite's 120 s.
@pytest.mark.long
@pytest.mark.timeout(300)
async def test_fuzzed_webhooks_get_2xx_4xx_or_503_and_every_process_survives(
    gateway_process: Process,
    triggers_process: Process,
    session: aiohttp.ClientSession,
    kafka_settings: KafkaSettings,
    unique: str,
) -> None:
    made = requests(REQUESTS_WANTED)  # ~5 s, while the processes start
    await wait_ready(session, gateway_process)
    await wait_ready(session, triggers_process)
    base = URL(gateway_process.base)
    started = time.monotonic()
    limit = asyncio.Semaphore(CONCURRENCY)

    async def send(request: Request) -> int | str:
        async with limit:
            return await exchange(session, base, request)

    answers = await asyncio.gather(*(send(r) for r in made))
    statuses = collections.Counter((r.kind, status) for r, status in zip(made, answers, strict=True))
    summary = sorted(statuses.items(), key=lambda item: str(item[0]))
    print(f"\n{len(made)} requests in {time.monotonic() - started:.1f}s: {summary}")
    wrong = [(status, r) for r, status in zip(made, answers, strict=True) if status not in FINE]
    assert not wrong, f"{len(wrong)} answers that are neither 2xx, 4xx nor 503, the first:\n" + "\n".join(
        f"{s}: {r!r}" for s, r in wrong[:20]
    )
    assert len(made) >= REQUESTS_WANTED
    for kind in ("alertmanager", "json", "cloudevents", "github", "standard-webhooks"):
        # every kind had requests accepted and refused
        assert any(k == kind and isinstance(s, int) and 200 <= s < 300 for k, s in statuses), kind
        assert any(k == kind and isinstance(s, int) and 400 <= s < 500 for k, s in statuses), kind

    await wait_consumed(kafka_settings, triggers_process, unique, timeout=60)
    for process in (gateway_process, triggers_process):
        assert process.popen.poll() is None, f"{process.name} died:\n{process.tail()}"
        for probe in ("/healthz", "/readyz"):
            async with session.get(process.base + probe) as answer:
                assert answer.status == 200, (process.name, probe, await answer.text(), process.tail())

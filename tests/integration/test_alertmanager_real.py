"""The real Alertmanager (Debian's prometheus-alertmanager) sending to the gateway: its re-sends
repeat a dedupe key and never invent one, an HA pair's duplicates too, so downstream there is one
run per alert state change; and what it sends while Kafka is down arrives once Kafka is back,
because it retries the 503s."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from temporalio.client import Client

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings
from gateway.sources.alertmanager import alert_dedupe_key
from hookline.definitions import DefinitionStore
from hookline.kafka import ensure_topics
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from hookline.stack import KafkaServer, free_port
from schemas.events import Event
from tests.conftest import ROOT, events_of, read_topic, running
from tests.eventually import eventually
from tests.integration.conftest import runs_of, wait_ready
from triggers.app import TriggersService

# Debian's package; `make system-deps` installs it.
BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
TOKEN = "alertmanager-bearer-0123456789"


class Alertmanager:
    """One Alertmanager process on free ports, HA gossip off, sending to `webhook_url` with a
    bearer token, re-sending every few seconds."""

    def __init__(self, workdir: Path, webhook_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True)
        self._dir = workdir
        config = {
            "route": {
                "receiver": "hookline",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "2s",
            },
            "receivers": [
                {
                    "name": "hookline",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                        }
                    ],
                }
            ],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with (self._dir / "alertmanager.log").open("ab") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={self._dir / 'alertmanager.yml'}",
                    f"--storage.path={self._dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=log,
            )
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                async with session.get(f"{self.url}/-/ready") as response:
                    return response.status == 200

            what = f"alertmanager to start (see {self._dir / 'alertmanager.log'})"
            await eventually(ready, what, timeout=10, interval=0.1, retrying=aiohttp.ClientError)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    async def post(self, *alerts: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}/api/v2/alerts", json=list(alerts)) as response:
                assert response.status == 200, await response.text()


def alert(name: str, instance: str, starts_at: datetime, ends_at: datetime | None = None) -> dict[str, Any]:
    """An alert as Prometheus posts it: the same startsAt on every (re-)post while it fires."""
    doc: dict[str, Any] = {
        "labels": {"alertname": name, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{instance} is failing"},
        "startsAt": starts_at.isoformat(),
    }
    if ends_at is not None:
        doc["endsAt"] = ends_at.isoformat()
    return doc


@contextlib.asynccontextmanager
async def alertmanagers(tmp_path: Path, webhook_url: str, count: int) -> AsyncIterator[list[Alertmanager]]:
    started: list[Alertmanager] = []
    try:
        for i in range(count):
            am = Alertmanager(tmp_path / f"alertmanager-{i}", webhook_url)
            started.append(am)
            await am.start()
        yield started
    finally:
        for am in started:
            am.stop()


async def gateway_for(aiohttp_client: AiohttpClient, kafka: KafkaSettings, **options: Any) -> TestClient[Any, Any]:
    """A gateway whose alertmanager source wants Alertmanager's bearer token; `options`: more of
    its `GatewayOptions`."""
    chosen = GatewayOptions.model_validate(
        {"sources": {"alertmanager": {"kind": "alertmanager", "auth": {"bearer": [{"value": TOKEN}]}}}, **options}
    )
    client = await aiohttp_client(create_app(GatewaySettings(kafka=kafka, gateway=chosen)))
    await wait_ready(client)
    return client


def state_change(event: Event) -> tuple[str, str, str, str]:
    """What one alert state change is: alert (instance), its startsAt, its status."""
    a = event.data["alert"]
    return a["labels"]["instance"], a["fingerprint"], a["startsAt"], a["status"]


async def keys_by_change(kafka: KafkaSettings) -> dict[tuple[str, str, str, str], list[str]]:
    changes: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for event in events_of(await read_topic(kafka, kafka.events_topic, timeout=5)):
        changes[state_change(event)].append(event.dedupekey)
    return changes


async def until_sent(
    kafka: KafkaSettings, check: Callable[[dict[tuple[str, str, str, str], list[str]]], bool], timeout: float = 60
) -> dict[tuple[str, str, str, str], list[str]]:
    what = "Alertmanager to send what was expected (last check: what it had sent)"
    return await eventually(lambda: keys_by_change(kafka), what, until=check, timeout=timeout, interval=0.5)


def sent(changes: dict[tuple[str, str, str, str], list[str]], instance: str, status: str, at_least: int) -> bool:
    return sum(len(k) for (i, _, _, s), k in changes.items() if (i, s) == (instance, status)) >= at_least


@pytest.mark.long
@pytest.mark.usefixtures("worker")
async def test_resends_and_ha_duplicates_repeat_keys_and_start_one_run_per_state_change(
    aiohttp_client: AiohttpClient,
    kafka_settings: KafkaSettings,
    store: DefinitionStore,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
    tmp_path: Path,
    unique: str,
) -> None:
    name = f"Incident Response {unique}"
    definition = await store.put(
        {
            "name": name,
            "trigger": {"type": "webhook", "source": "alertmanager", "on_resolved": "start"},
            "steps": [
                {"name": "Analyze Alert", "agent": "analyzer"},
                {"name": "Take Action", "agent": "remediator"},
                {"name": "Notify Team", "agent": "notifier"},
            ],
        }
    )
    gateway = await gateway_for(aiohttp_client, kafka_settings)
    service = triggers_service()
    now = datetime.now(UTC).replace(microsecond=0)
    a1, b1 = alert(unique, "a:9100", now), alert(unique, "b:9100", now)
    # Two Alertmanagers that do not gossip: an HA pair at its worst, both sending everything.
    async with (
        running(service.run, service.stop),
        alertmanagers(tmp_path, str(gateway.make_url("/hooks/alertmanager")), 2) as pair,
    ):
        for am in pair:
            await am.post(a1, b1)
        await until_sent(kafka_settings, lambda c: sent(c, "a:9100", "firing", 4) and sent(c, "b:9100", "firing", 4))
        resolved_at = datetime.now(UTC)
        for am in pair:
            await am.post(alert(unique, "a:9100", now, ends_at=resolved_at))
        await until_sent(kafka_settings, lambda c: sent(c, "a:9100", "resolved", 2))
        refired = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        for am in pair:
            await am.post(alert(unique, "a:9100", refired), alert(unique, "b:9100", now, ends_at=datetime.now(UTC)))
        changes = await until_sent(
            kafka_settings,
            lambda c: sent(c, "b:9100", "resolved", 2) and sent(c, "a:9100", "firing", 8),
        )
        workflow_ids = {event_run_id(definition.id, "alertmanager", key) for keys in changes.values() for key in keys}
        runs = await runs_once_settled(temporal_client, workflow_ids)

    assert {(i, s) for i, _, _, s in changes} == {
        ("a:9100", "firing"),
        ("a:9100", "resolved"),
        ("b:9100", "firing"),
        ("b:9100", "resolved"),
    }
    assert len(changes) == 5  # a fired, resolved and fired again; b fired and resolved
    # Every re-send and duplicate of a state change carries the key of that state change alone (not
    # of endsAt, or of which Alertmanager sent it), and no two state changes share one.
    for (_, fingerprint, starts_at, status), keys in changes.items():
        assert set(keys) == {alert_dedupe_key("hookline", fingerprint, starts_at, status)}, changes
    assert len({key for keys in changes.values() for key in keys}) == len(changes) == 5
    assert sum(len(keys) for keys in changes.values()) > 10  # there were re-sends and duplicates
    assert len(workflow_ids) == 5 and all(n == 1 for n in runs.values()), runs


async def runs_once_settled(client: Client, workflow_ids: set[str], settle_s: float = 1.0) -> dict[str, int]:
    """How many runs each workflow has: counted once every one has a run, and again `settle_s`
    later, so that a duplicate started meanwhile is counted too."""

    async def not_started() -> list[str]:
        return sorted([wid for wid in workflow_ids if not await runs_of(client, wid)])

    what = "a run of every workflow (last check: those without)"
    await eventually(not_started, what, until=lambda waiting: not waiting, timeout=30, interval=0.1)
    await asyncio.sleep(settle_s)
    return {wid: len(await runs_of(client, wid)) for wid in workflow_ids}


@pytest.mark.long
async def test_what_alertmanager_sends_while_kafka_is_down_arrives_once_kafka_is_back(
    aiohttp_client: AiohttpClient, tmp_path: Path, unique: str
) -> None:
    kafka = KafkaServer(tmp_path / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port())
    await kafka.start()
    try:
        settings = KafkaSettings(
            bootstrap_servers=kafka.bootstrap_servers, topic_prefix=unique, request_timeout_ms=2000
        )
        await ensure_topics(settings)
        # With Kafka down each 503 comes after the produce timeout: 1 s rather than 5 s (and
        # the 1 s abort after it) brings the three the test waits for ~15 s sooner.
        gateway = await gateway_for(aiohttp_client, settings, produce_timeout_s=1.0)
        now = datetime.now(UTC).replace(microsecond=0)
        async with alertmanagers(tmp_path, str(gateway.make_url("/hooks/alertmanager")), 1) as [am]:
            await am.post(alert(unique, "a:9100", now))
            await until_sent(settings, lambda c: sent(c, "a:9100", "firing", 1))

            kafka.stop()
            await am.post(alert(unique, "a:9100", now, ends_at=datetime.now(UTC)), alert(unique, "c:9100", now))
            await until_answered_503(gateway, times=3)
            await kafka.start()

            changes = await until_sent(
                settings, lambda c: sent(c, "a:9100", "resolved", 1) and sent(c, "c:9100", "firing", 1), timeout=90
            )
    finally:
        kafka.stop()
    assert {(i, s) for i, _, _, s in changes} == {("a:9100", "firing"), ("a:9100", "resolved"), ("c:9100", "firing")}
    assert all(len(set(keys)) == 1 for keys in changes.values())


async def until_answered_503(gateway: TestClient[Any, Any], times: int) -> None:
    """Wait until the gateway has told Alertmanager 503 `times` times (so it did retry)."""
    sample = 'hookline_gateway_requests_total{source="alertmanager",status="503"} '

    async def answered() -> float:
        text = await (await gateway.get("/metrics")).text()
        line = next((x for x in text.splitlines() if x.startswith(sample)), None)
        return float(line.rsplit(" ", 1)[1]) if line is not None else 0.0

    what = f"the gateway to answer Alertmanager 503 {times} times"
    await eventually(answered, what, until=lambda count: count >= times, timeout=60, interval=0.1)

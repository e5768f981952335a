"""The overview's pure parts without a broker: the event index's count and label filter on a real
SQLite database, the labels an event carries, what needs attention, and `GET /overview` with
every dependency down (each part unavailable, the answer still given, as the document says).
The numbers against the real stack: tests/integration/test_api_overview.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pytest_aiohttp import AiohttpClient

from gateway.api import API_PREFIX
from gateway.api.event_index import EventFilter, EventIndex, labels_of
from gateway.api.models import DlqSize, PoolsPolled, RunCounts, RunnerPool, WaitingApprovals
from gateway.api.overview import ATTENTION, _Parts
from gateway.app import create_app
from hookline.settings import KafkaSettings
from tests.openapi_contract import ResponseContract
from tests.unit.test_api_contract import AGENTS, TOKENS, settings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def decision(event_id: str, decided: datetime, labels: dict[str, str] | None, team: str = "team-a") -> bytes:
    alert = {"labels": labels} if labels is not None else {}
    return orjson.dumps(
        {
            "event_id": event_id,
            "source": "alertmanager",
            "type": "io.prometheus.alertmanager.alert.firing",
            "subject": "HighLatency",
            "topic": "hookline.events",
            "partition": 0,
            "offset": 0,
            "accepted_at": decided - timedelta(seconds=1),
            "consumed_at": decided,
            "decided_at": decided,
            "teams": [team],
            "snapshot": "s",
            "matched": [],
            "headers": [],
            "data": {"status": "firing", "alert": alert},
        }
    )


@pytest.fixture
async def index(tmp_path: Path) -> Any:
    index = EventIndex(KafkaSettings(), str(tmp_path / "events.db"))
    await index._call(index._open)
    rows = [
        ("e1", NOW - timedelta(seconds=30), {"service": "db", "env": "prod"}),
        ("e2", NOW - timedelta(seconds=90), {"service": "db", "env": "staging"}),
        ("e3", NOW - timedelta(seconds=200), {"service": "web"}),
        ("e4", NOW - timedelta(seconds=400), None),
    ]
    await index._call(lambda: index._apply([(e.encode(), decision(e, at, labels)) for e, at, labels in rows]))
    yield index
    await index.stop()


async def found(index: EventIndex, where: EventFilter) -> list[str]:
    return sorted(d.event_id for _, d in await index.search(where, 10))


async def test_the_index_counts_the_events_decided_since_a_time(index: EventIndex) -> None:
    assert await index.count(EventFilter(decided_since=NOW - timedelta(minutes=1))) == 1
    assert await index.count(EventFilter(decided_since=NOW - timedelta(minutes=5))) == 3
    assert await index.count(EventFilter()) == 4
    assert await index.count(EventFilter(team="team-b")) == 0


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((("service", "db"),), ["e1", "e2"]),
        ((("service", "db"), ("env", "prod")), ["e1"]),
        ((("service", "web"),), ["e3"]),
        ((("service", "cache"),), []),
        ((("env", ""),), []),
    ],
)
async def test_the_index_selects_events_by_their_labels(
    index: EventIndex, labels: tuple[tuple[str, str], ...], expected: list[str]
) -> None:
    assert await found(index, EventFilter(labels=labels)) == expected


async def test_an_index_file_of_an_older_schema_is_built_again(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # version 1: no decided_at, no labels
        old.execute("CREATE TABLE decisions (event_id TEXT PRIMARY KEY, accepted_at REAL NOT NULL, body BLOB)")
        old.execute("INSERT INTO decisions VALUES ('gone', 1.0, x'7b7d')")
    old.close()
    index = EventIndex(KafkaSettings(), str(path))
    await index._call(index._open)
    try:
        await index._call(lambda: index._apply([(b"e1", decision("e1", NOW, {"service": "db"}))]))
        assert await found(index, EventFilter(labels=(("service", "db"),))) == ["e1"]
        assert await index.count(EventFilter()) == 1  # the old rows are gone; the topic brings them back
    finally:
        await index.stop()


@pytest.mark.parametrize(
    ("data", "labels"),
    [
        ({"alert": {"labels": {"service": "db", "severity": "critical"}}}, {"service": "db", "severity": "critical"}),
        ({"labels": {"team": "pay", "shard": 3}}, {"team": "pay"}),
        ({"alert": {"labels": {}}}, None),
        ({"labels": "service=db"}, None),
        ([1, 2], None),
        (None, None),
    ],
)
def test_the_labels_of_an_event_are_its_alerts_or_its_own_string_labels(data: Any, labels: Any) -> None:
    assert labels_of(data) == labels


def pool(name: str, polling: bool) -> RunnerPool:
    return RunnerPool(pool=name, task_queue=f"q.{name}", kinds=("shell",), polling=polling, pollers=int(polling))


def attention(parts: _Parts) -> list[tuple[str, int]]:
    return [(item.kind, item.count) for check in ATTENTION for item in check(parts, NOW)]


def test_failed_runs_then_approvals_then_pools_without_pollers_then_dlq_growth_need_attention() -> None:
    runs = RunCounts(by_status={}, failed_last_hour=3)
    pools = PoolsPolled(pools=[pool("shell", True), pool("ssh", False)], with_pollers=1, total=2)
    parts = _Parts(runs=runs, dlq=DlqSize(size=5, last_hour=2), runners=pools, approvals=WaitingApprovals(runs=4))
    assert attention(parts) == [
        ("failed_runs", 3),
        ("waiting_approvals", 4),
        ("pool_without_pollers", 1),
        ("dlq_growth", 2),
    ]


def test_nothing_needs_attention_when_all_is_quiet_or_unread() -> None:
    quiet = _Parts(
        runs=RunCounts(by_status={}, failed_last_hour=0),
        dlq=DlqSize(size=4, last_hour=0),  # old dead letters: no growth
        runners=PoolsPolled(pools=[pool("shell", True)], with_pollers=1, total=1),
        approvals=WaitingApprovals(runs=0),
    )
    assert attention(quiet) == []
    assert attention(_Parts(runs=None, dlq=None, runners=None, approvals=None)) == []


async def test_the_overview_answers_with_each_unavailable_part_saying_why(aiohttp_client: AiohttpClient) -> None:
    base = settings()
    down = base.model_copy(update={"kafka": base.kafka.model_copy(update={"request_timeout_ms": 500})})
    client = await aiohttp_client(create_app(down, agents=AGENTS))
    headers = {"Authorization": f"Bearer {TOKENS['team'].token.get_secret_value()}"}
    response = await client.get(f"{API_PREFIX}/overview", headers=headers)
    assert response.status == 200
    body = await response.json()
    parts = ("events", "runs", "dlq", "consumer_lag", "runners", "approvals")
    assert sorted(body["unavailable"]) == sorted(parts)
    assert all(body[part] is None for part in parts) and body["attention"] == [] and body["team"] == "team-a"
    contract = ResponseContract(await (await client.get(f"{API_PREFIX}/openapi.json")).json())
    assert contract.breaches("GET", f"{API_PREFIX}/overview", 200, response.content_type, await response.read()) == []

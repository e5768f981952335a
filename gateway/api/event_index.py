"""The API's index of the triggers' decisions: `<prefix>.decisions` read into SQLite.

Kafka holds the decisions (durable, replicated, bounded by the topic's retention); this index is
a view of them that each gateway builds for itself, reading the topic from its beginning and
then following it, so a restarted gateway or a second replica answers the same. A decision
written twice for one event (a redelivery after a crash, a DLQ replay) is merged into one row
(`Decision.merged`), never listed twice. Rows older than `kafka.decisions_retention_h` are
dropped, as Kafka drops their records.

SQLite runs in one thread of its own, so a query or a batch of inserts never holds the event
loop that serves the webhooks.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from hookline.kafka import assign_to_follow, create_consumer, start_client
from hookline.lifecycle import cancel_and_wait
from hookline.logging import get_logger
from hookline.retry import Backoff, retry
from hookline.settings import KafkaSettings
from schemas.decisions import SNAPSHOT_PREFIX, Decision, Snapshot

__all__ = ["MAX_LABELS", "EventFilter", "EventIndex", "labels_of"]

log = get_logger(__name__)
T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

_REREAD = Backoff(first_s=1.0, max_s=15.0)
#: How often rows past the retention are dropped.
_SWEEP_INTERVAL_S = 60.0

#: The version of `_SCHEMA`: an index file of another version is emptied and built again from the
#: topic (which every start reads from its beginning anyway).
_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    event_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    accepted_at REAL NOT NULL,
    decided_at REAL NOT NULL,
    teams TEXT NOT NULL,          -- ",team-a,team-b,": who may see it
    matched_teams TEXT NOT NULL,  -- the teams whose definitions it matched, the same way
    labels TEXT,                  -- the event's labels as a JSON object of strings (`labels_of`), if any
    snapshot TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (accepted_at DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS decisions_by_decision ON decisions (decided_at);
CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, seen_at REAL NOT NULL, body BLOB NOT NULL);
"""
#: How many labels a filter may name (each is one json_each lookup per candidate row).
MAX_LABELS = 10


def labels_of(data: Any) -> dict[str, str] | None:
    """The labels an event's data carries: an Alertmanager alert's (`data.alert.labels`), or any
    event's top-level `labels` object; only string values. None: it carries none."""
    found = None
    if isinstance(data, dict):
        alert = data.get("alert")
        found = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(found, dict):
            found = data.get("labels")
    if not isinstance(found, dict):
        return None
    return {str(k): v for k, v in found.items() if isinstance(v, str)} or None


def _team_list(teams: Any) -> str:
    return "," + ",".join(sorted(teams)) + "," if teams else ","


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What `GET /events` narrows to; None: any. `team` None: every team (an operator)."""

    team: str | None = None
    source: str | None = None
    type: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    matched: bool | None = None
    #: Decided at or after this time.
    decided_since: datetime | None = None
    #: (key, value) pairs the event's labels must all have.
    labels: tuple[tuple[str, str], ...] = ()

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column in ("source", "type", "subject"):
            if (value := getattr(self, column)) is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since is not None:
            clauses.append("accepted_at >= ?")
            args.append(self.since.timestamp())
        if self.until is not None:
            clauses.append("accepted_at < ?")
            args.append(self.until.timestamp())
        if self.team is not None:
            clauses.append("instr(teams, ?) > 0")
            args.append(f",{self.team},")
        if self.matched is not None:
            # For a team: whether one of its definitions matched; for an operator: any.
            column = "instr(matched_teams, ?) > 0" if self.team is not None else "matched_teams != ','"
            clauses.append(column if self.matched else f"NOT ({column})")
            if self.team is not None:
                args.append(f",{self.team},")
        if self.decided_since is not None:
            clauses.append("decided_at >= ?")
            args.append(self.decided_since.timestamp())
        for key, value in self.labels:
            clauses.append("EXISTS (SELECT 1 FROM json_each(labels) WHERE json_each.key = ? AND json_each.value = ?)")
            args += [key, value]
        return " AND ".join(clauses) or "1", args


class EventIndex:
    """Started by the API once Kafka answers; `caught_up` once it has read what the topic held
    at start."""

    def __init__(self, settings: KafkaSettings, path: str = ":memory:") -> None:
        self._settings = settings
        self._topic = settings.decisions_topic
        self._retention_s = settings.decisions_retention_h * 3600
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="event-index")
        self._db: sqlite3.Connection | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._swept = 0.0
        self.caught_up = False

    def _database(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the event index is not open")
        return self._db

    async def _call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    def _open(self) -> None:
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        if self._db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            self._db.executescript("DROP TABLE IF EXISTS decisions; DROP TABLE IF EXISTS snapshots;")
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        self._db.executescript(_SCHEMA)

    async def start(self) -> None:
        """Open the database and read the topic to its current end; then follow it."""
        await self._call(self._open)
        self._consumer = create_consumer(self._settings, group_id=None, isolation_level="read_uncommitted")
        await start_client(self._consumer)
        ends = await assign_to_follow(self._consumer, self._topic)
        self._follow = asyncio.create_task(self._run(self._consumer, ends), name="event-index-follow")

    async def stop(self) -> None:
        await cancel_and_wait(self._follow)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._db is not None:
            await self._call(self._db.close)
        self._thread.shutdown(wait=False)

    async def _run(self, consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> None:
        pending = {tp: end for tp, end in ends.items() if end > 0}
        self.caught_up = not pending
        while True:
            batches = await retry(
                lambda: consumer.getmany(timeout_ms=500, max_records=2000),
                backoff=_REREAD,
                retry_on=KafkaError,
                message="decisions topic unreadable, retrying",
                topic=self._topic,
            )
            records = [(r.key, r.value) for rs in batches.values() for r in rs]
            if records:
                await self._call(functools.partial(self._apply, records))
            if not self.caught_up:
                for tp in list(pending):
                    if await consumer.position(tp) >= pending[tp]:
                        del pending[tp]
                if not pending:
                    self.caught_up = True
                    log.info("event index caught up", topic=self._topic)

    def _apply(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        """Index a batch (in the index's thread): snapshots by id, decisions merged per event."""
        db = self._database()
        db.execute("BEGIN")
        try:
            for key, value in records:
                if key is None or value is None:
                    continue
                try:
                    self._index(db, key.decode(), value)
                except Exception as exc:  # a record of a newer or broken writer never stops the index
                    log.warning("skipping unreadable decision record", key=key[:80], error=str(exc))
            now = time.time()
            if now - self._swept >= _SWEEP_INTERVAL_S:
                self._swept = now
                db.execute("DELETE FROM decisions WHERE accepted_at < ?", (now - self._retention_s,))
                # A snapshot is written before the decisions that name it: only an old one can be orphaned.
                db.execute(
                    "DELETE FROM snapshots WHERE seen_at < ? AND id NOT IN (SELECT DISTINCT snapshot FROM decisions)",
                    (now - _SWEEP_INTERVAL_S,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _index(db: sqlite3.Connection, key: str, value: bytes) -> None:
        if key.startswith(SNAPSHOT_PREFIX):
            db.execute(
                "INSERT OR REPLACE INTO snapshots (id, seen_at, body) VALUES (?, ?, ?)",
                (key[len(SNAPSHOT_PREFIX) :], time.time(), value),
            )
            return
        row = db.execute("SELECT body FROM decisions WHERE event_id = ?", (key,)).fetchone()
        if row is None:
            doc = orjson.loads(value)  # cheaper than the model, on a row that needs no merge
            accepted = datetime.fromisoformat(doc["accepted_at"]).timestamp()
            decided = datetime.fromisoformat(doc["decided_at"]).timestamp()
            teams, matched = doc["teams"], {m["team"] for m in doc["matched"]}
            labels = labels_of(doc.get("data"))
            fields = (doc["event_id"], doc["source"], doc["type"], doc["subject"], accepted, decided, doc["snapshot"])
        else:
            decision = Decision.model_validate_json(row[0]).merged(Decision.model_validate_json(value))
            value = decision.model_dump_json().encode()
            teams = decision.teams
            matched = decision.matched_teams()
            labels = labels_of(decision.data)
            fields = (
                decision.event_id,
                decision.source,
                decision.type,
                decision.subject,
                decision.accepted_at.timestamp(),
                decision.decided_at.timestamp(),
                decision.snapshot,
            )
        db.execute(
            "INSERT OR REPLACE INTO decisions "
            "(event_id, source, type, subject, accepted_at, decided_at, snapshot, teams, matched_teams, labels, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, _team_list(teams), _team_list(matched), orjson.dumps(labels).decode() if labels else None, value),
        )

    async def get(self, event_id: str) -> Decision | None:
        return await self._body(Decision, "SELECT body FROM decisions WHERE event_id = ?", event_id)

    async def snapshot(self, snapshot_id: str) -> Snapshot | None:
        return await self._body(Snapshot, "SELECT body FROM snapshots WHERE id = ?", snapshot_id)

    async def _body(self, model: type[ModelT], query: str, key: str) -> ModelT | None:
        """The body of the row `query` selects by `key`, as `model`; None if there is no such row."""

        def read() -> bytes | None:
            row = self._database().execute(query, (key,)).fetchone()
            return row[0] if row else None

        body = await self._call(read)
        return model.model_validate_json(body) if body is not None else None

    async def search(
        self, where: EventFilter, limit: int, after: tuple[float, str] | None = None
    ) -> list[tuple[float, Decision]]:
        """Up to `limit` decisions, newest accepted first; `after` is the (accepted_at, event id)
        of the last one of the previous page."""
        clause, args = where.where()
        if after is not None:
            clause += " AND (accepted_at < ? OR (accepted_at = ? AND event_id < ?))"
            args += [after[0], after[0], after[1]]

        def read() -> list[tuple[float, bytes]]:
            sql = (
                f"SELECT accepted_at, body FROM decisions WHERE {clause} "  # noqa: S608 - clause holds no values
                "ORDER BY accepted_at DESC, event_id DESC LIMIT ?"
            )
            return self._database().execute(sql, (*args, limit)).fetchall()

        return [(at, Decision.model_validate_json(body)) for at, body in await self._call(read)]

    async def count(self, where: EventFilter) -> int:
        """How many decided events `where` selects."""
        clause, args = where.where()

        def read() -> int:
            sql = f"SELECT count(*) FROM decisions WHERE {clause}"  # noqa: S608 - clause holds no values
            return int(self._database().execute(sql, args).fetchone()[0])

        return await self._call(read)

"""Workflow definitions on the compacted `<prefix>.workflows` topic, materialised in memory.

Compaction keeps only the latest record per key, so every version has a key of its own:

- `<id>@v<N>`: version N, written once, before the head record that makes it current.
- `<id>`: the current version; a tombstone (null value) deletes the definition.
- `<id>@deleted`: `{"id", "version", "deleted_at"}`, the last version of a deleted definition,
  written with the head's tombstone and tombstoned itself when the id is created again.
- `<id>@claim`: `{"writer", "base", "version"}`, written before each of the above: versions are
  compare-and-set across processes (`hookline.claims`).

Version values are `{"id", "version", "digest", "definition": <document>, "created_at"}`.
Definition ids cannot contain `@`. Heads written before versions were archived have no
`<id>@v<N>` record: such a head counts as its own version and is archived on its next change.
Every process that needs definitions holds a `DefinitionStore` that reads the topic from the
beginning and then follows it. A write reads the topic to its end first, claims the version it
will write, and writes only if its claim won; `expected` (an API's `If-Match`) makes it
conditional on the version current at that point.

Writes are checked against the topics policy (`hookline.topics`) besides the schema; a stored
definition that fails it (saved before the policy, or under a wider one) is still readable but
not in force: `all()` leaves it out, so no trigger of it subscribes, matches or ticks.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookline.claims import CLAIM_TTL_MS, Claim, Claims
from hookline.kafka import assign_to_follow, create_consumer, create_producer, start_client
from hookline.lifecycle import cancel_and_wait
from hookline.logging import get_logger
from hookline.retry import Backoff, retry
from hookline.settings import KafkaSettings
from hookline.topics import topic_errors
from schemas.validation import SchemaError
from schemas.workflow import DefinitionError, WorkflowDefinition, parse_definition

__all__ = [
    "DefinitionExists",
    "DefinitionStore",
    "StaleVersion",
    "StoredDefinition",
    "WriteContended",
    "load_definition_files",
]

log = get_logger(__name__)

Check = Callable[[WorkflowDefinition], list[SchemaError]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """One version of a definition as stored: the document as given and its parsed form."""

    id: str
    version: int
    digest: str
    document: dict[str, Any]
    definition: WorkflowDefinition
    created_at: str = ""  # ISO 8601 UTC; empty for records written before it was recorded
    #: Who wrote this version: the API token's name (and team), or the command; empty before it was recorded.
    author: str = ""


class DefinitionExists(ValueError):
    """`create` was given the id of a definition that exists (and is not deleted)."""

    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(f'a workflow definition with id "{definition_id}" already exists; update it instead')


class StaleVersion(ValueError):
    """A conditional write expected another current version (or none)."""

    def __init__(self, definition_id: str, expected: int, current: int) -> None:
        self.definition_id, self.expected, self.current = definition_id, expected, current
        now = f"version {current} is current" if current else "it does not exist"
        super().__init__(
            f'workflow definition "{definition_id}" was expected at version {expected}, but {now}; '
            "read it again and retry"
        )


class WriteContended(ValueError):
    """Other writers kept winning the claim for this definition's next version (or one of them
    died holding it, for up to `CLAIM_TTL_MS`)."""

    def __init__(self, definition_id: str) -> None:
        self.definition_id = definition_id
        super().__init__(
            f'workflow definition "{definition_id}" is being written by someone else at the same time; retry shortly'
        )


class _ClaimLost(Exception):
    """Another writer's claim to the next version won: read the topic again and retry."""


#: The attempts of a write whose claims keep losing, and the jittered waits between them: about
#: 4 s in all, then `WriteContended`.
_ATTEMPTS = 13
_CONTENTION = Backoff(first_s=0.02, max_s=0.5, jitter=0.5)
#: The pause before the definitions topic is read again after a failed read.
_REREAD = Backoff(first_s=1.0, max_s=1.0)


async def _contended(definition_id: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`, tried again while other writers win its claim; `WriteContended` after the last."""
    try:
        return await retry(
            attempt,
            backoff=_CONTENTION,
            retry_on=_ClaimLost,
            attempts=_ATTEMPTS,
            message="definition write lost its claim, retrying",
            level=logging.DEBUG,
            definition_id=definition_id,
        )
    except _ClaimLost:
        raise WriteContended(definition_id) from None


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode(stored: StoredDefinition) -> bytes:
    s = stored
    value = {
        "id": s.id,
        "version": s.version,
        "digest": s.digest,
        "definition": s.document,
        "created_at": s.created_at,
        "author": s.author,
    }
    return orjson.dumps(value)


def _decode(definition_id: str, value: bytes) -> StoredDefinition:
    raw = orjson.loads(value)
    document = raw["definition"]
    definition = parse_definition(document)
    if definition.id != definition_id:
        raise ValueError(f'the document\'s id is "{definition.id}"')
    return StoredDefinition(
        definition_id,
        int(raw["version"]),
        str(raw["digest"]),
        document,
        definition,
        str(raw.get("created_at", "")),
        str(raw.get("author", "")),
    )


class DefinitionStore:
    """The in-memory view of the definitions topic; writes return once this view has them."""

    def __init__(self, settings: KafkaSettings, *, check: Check | None = None) -> None:
        self._settings = settings
        self._topic = settings.workflows_topic
        self._check = check
        self._heads: dict[str, StoredDefinition] = {}
        #: Heads the topics policy refuses, with why: readable, but not in force.
        self._refused: dict[str, list[SchemaError]] = {}
        self._archive: dict[str, dict[int, StoredDefinition]] = {}
        self._deleted: dict[str, int] = {}
        self._claims = Claims()
        #: The verdicts on this view's own claims being written, by writer token.
        self._verdicts: dict[str, bool] = {}
        self._consumer: AIOKafkaConsumer | None = None
        #: Asks the topic's end for `_catch_up`. It fetches nothing, so the broker answers it at
        #: once; on the follower's connection the answer waits for its pending long poll (up to
        #: fetch_max_wait_ms, 500 ms, when nothing new is written).
        self._ends: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._following = False
        self._positions: dict[int, int] = {}
        self._advanced = asyncio.Condition()
        # One write at a time in this process: claims settle races between processes, this
        # keeps this process's own writes from losing claims to each other.
        self._write_lock = asyncio.Lock()
        #: Bumped on every change, so views derived from the definitions know when to rebuild.
        self.generation = 0

    def get(self, definition_id: str) -> StoredDefinition | None:
        """The current version; None if there is none or it was deleted."""
        return self._heads.get(definition_id)

    def get_version(self, definition_id: str, version: int) -> StoredDefinition | None:
        """Any stored version, also of a deleted definition."""
        stored = self._archive.get(definition_id, {}).get(version)
        head = self._heads.get(definition_id)
        if stored is None and head is not None and head.version == version:
            return head
        return stored

    def versions(self, definition_id: str) -> list[int]:
        known = set(self._archive.get(definition_id, ()))
        if (head := self._heads.get(definition_id)) is not None:
            known.add(head.version)
        return sorted(known)

    def all(self, *, refused: bool = False) -> list[StoredDefinition]:
        """The current version of every definition in force (not deleted, and allowed by the
        topics policy), by id; with `refused`, also those the policy refuses."""
        return sorted((d for d in self._heads.values() if refused or d.id not in self._refused), key=lambda d: d.id)

    def refusal(self, definition_id: str) -> list[SchemaError]:
        """Why the current version of `definition_id` is not in force; empty if it is."""
        return self._refused.get(definition_id, [])

    def deleted(self, definition_id: str) -> int | None:
        """The last version of `definition_id` if it is currently deleted."""
        return None if definition_id in self._heads else self._deleted.get(definition_id)

    async def start(self) -> None:
        """Read the topic to its end, then keep following it in the background."""
        self._consumer = create_consumer(self._settings, group_id=None, isolation_level="read_uncommitted")
        await start_client(self._consumer)
        self._ends = create_consumer(self._settings, group_id=None, isolation_level="read_uncommitted")
        await start_client(self._ends)
        ends = await assign_to_follow(self._consumer, self._topic)
        self._following = True
        self._follow = asyncio.create_task(self._run(), name="definitions-follow")
        await self._wait_for({tp.partition: off for tp, off in ends.items()})
        log.info("definitions loaded", count=len(self._heads), topic=self._topic)

    async def stop(self) -> None:
        await cancel_and_wait(self._follow)
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._ends is not None:
            await self._ends.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        try:
            while True:
                batches = await retry(
                    lambda: consumer.getmany(timeout_ms=500),
                    backoff=_REREAD,
                    retry_on=KafkaError,
                    message="definitions topic unreadable, retrying",
                    topic=self._topic,
                )
                for tp, records in batches.items():
                    for record in records:
                        self._apply(record.key, record.value, record.timestamp)
                        self._positions[tp.partition] = record.offset + 1
                async with self._advanced:
                    self._advanced.notify_all()
        finally:
            # Writers waiting for their records must fail rather than wait forever.
            self._following = False
            async with self._advanced:
                self._advanced.notify_all()

    def _apply(self, key: bytes | None, value: bytes | None, timestamp_ms: int) -> None:
        if key is None:
            return
        name = key.decode(errors="replace")
        try:
            if name.endswith("@claim"):
                self._apply_claim(name.removesuffix("@claim"), value, timestamp_ms)
                return  # no definition changed
            self._apply_record(name, value)
        except Exception as exc:
            # A record written by a newer or broken writer must never stop this process.
            log.warning("skipping unreadable definition record", key=name, error=str(exc))
            return
        self.generation += 1

    def _apply_claim(self, definition_id: str, value: bytes | None, timestamp_ms: int) -> None:
        if value is None:
            return
        claim = Claim.decode(value)
        head = self._heads.get(definition_id)
        won = self._claims.judge(definition_id, claim, head.version if head else 0, timestamp_ms)
        if claim.writer in self._verdicts:
            self._verdicts[claim.writer] = won

    def _apply_record(self, key: str, value: bytes | None) -> None:
        definition_id, marked, suffix = key.partition("@")
        if not marked:
            self._refused.pop(definition_id, None)
            self._claims.settled(definition_id)
            if value is None:
                self._heads.pop(definition_id, None)
                return
            head = self._heads[definition_id] = _decode(definition_id, value)
            self._claims.saw_version(definition_id, head.version)
            if errors := topic_errors(head.definition, self._settings):
                self._refused[definition_id] = errors
                log.warning(
                    "stored definition ignored: it names topics it may not subscribe to",
                    definition_id=definition_id,
                    version=head.version,
                    errors=[str(e) for e in errors],
                )
        elif suffix == "deleted":
            if value is None:
                self._deleted.pop(definition_id, None)
            else:
                self._deleted[definition_id] = int(orjson.loads(value)["version"])
                self._claims.saw_version(definition_id, self._deleted[definition_id])
        elif suffix.startswith("v") and suffix[1:].isdecimal():
            archive = self._archive.setdefault(definition_id, {})
            if value is None:
                archive.pop(int(suffix[1:]), None)
                return
            stored = _decode(definition_id, value)
            if stored.version != int(suffix[1:]):
                raise ValueError(f"version {stored.version} stored under {key}")
            archive[stored.version] = stored
            self._claims.saw_version(definition_id, stored.version)
        else:
            raise ValueError(f"unknown key suffix @{suffix}")

    def _caught_up(self, offsets: dict[int, int]) -> bool:
        return all(self._positions.get(p, 0) >= off for p, off in offsets.items() if off > 0)

    async def _wait_for(self, offsets: dict[int, int]) -> None:
        async with self._advanced:
            await self._advanced.wait_for(lambda: self._caught_up(offsets) or not self._following)
        if not self._caught_up(offsets):
            raise RuntimeError(f"stopped following {self._topic} before reading the records written")

    async def put(
        self,
        document: dict[str, Any],
        *,
        definition_id: str | None = None,
        expected: int | None = None,
        author: str = "",
    ) -> StoredDefinition:
        """Validate and store a new version, written by `author`; an unchanged document keeps its
        version. `definition_id` sets the document's id (the id in a PUT URL wins over the body's).
        With `expected`, only if that version is current (0: only if none is); `StaleVersion`
        otherwise."""
        if definition_id is not None:
            document = {**document, "id": definition_id}
        async with self._write_lock:
            definition = self._validate(document)
            did, digest = definition.id, _digest(document)

            async def attempt() -> StoredDefinition:
                await self._catch_up()
                current = self._heads.get(did)
                _check_expected(did, expected, current)
                if current is not None and current.digest == digest:
                    return current
                stored = StoredDefinition(did, self._next_version(did), digest, document, definition, _now(), author)
                await self._claim(did, current, stored.version)
                await self._send(self._version_records(stored))
                return stored

            return await _contended(did, attempt)

    async def create(self, document: dict[str, Any], *, author: str = "") -> StoredDefinition:
        """Store version 1 (or the next after a deletion), written by `author`; `DefinitionExists`
        if the id exists, also when another writer created it at the same moment."""
        async with self._write_lock:
            definition = self._validate(document)
            did, digest = definition.id, _digest(document)

            async def attempt() -> StoredDefinition:
                await self._catch_up()
                if did in self._heads:
                    raise DefinitionExists(did)
                stored = StoredDefinition(did, self._next_version(did), digest, document, definition, _now(), author)
                await self._claim(did, None, stored.version)
                await self._send(self._version_records(stored))
                return stored

            return await _contended(did, attempt)

    async def delete(
        self, definition_id: str, *, expected: int | None = None, author: str = ""
    ) -> StoredDefinition | None:
        """Delete the definition, keeping its versions; returns what was current, if anything.
        With `expected`, only if that version is current; `StaleVersion` otherwise."""

        async def attempt() -> StoredDefinition | None:
            await self._catch_up()
            head = self._heads.get(definition_id)
            if head is None:
                return None
            _check_expected(definition_id, expected, head)
            await self._claim(definition_id, head, None)
            marker = orjson.dumps(
                {"id": definition_id, "version": head.version, "deleted_at": _now(), "deleted_by": author}
            )
            records = self._unarchived_head(definition_id)
            await self._send([*records, (f"{definition_id}@deleted", marker), (definition_id, None)])
            return head

        async with self._write_lock:
            return await _contended(definition_id, attempt)

    def _validate(self, document: dict[str, Any]) -> WorkflowDefinition:
        definition = parse_definition(document)
        errors = topic_errors(definition, self._settings)
        errors += self._check(definition) if self._check is not None else []
        if errors:
            raise DefinitionError(errors)
        return definition

    def _next_version(self, definition_id: str) -> int:
        # Never reuse a number: not one of a deleted definition's versions, nor one claimed.
        known = [0, *self.versions(definition_id), self._deleted.get(definition_id, 0)]
        return max([*known, self._claims.top(definition_id)]) + 1

    def _unarchived_head(self, definition_id: str) -> list[tuple[str, bytes | None]]:
        # A head from before versions were archived would be lost with its next change.
        head = self._heads.get(definition_id)
        if head is None or head.version in self._archive.get(definition_id, {}):
            return []
        return [(f"{definition_id}@v{head.version}", _encode(head))]

    def _version_records(self, stored: StoredDefinition) -> list[tuple[str, bytes | None]]:
        did, value = stored.id, _encode(stored)
        records = [*self._unarchived_head(did), (f"{did}@v{stored.version}", value), (did, value)]
        if did in self._deleted:
            records.append((f"{did}@deleted", None))
        return records

    async def _claim(self, definition_id: str, current: StoredDefinition | None, version: int | None) -> None:
        """Claim the write after `current` (to `version`; None: a deletion); `_ClaimLost` if
        another writer's claim won."""
        writer = uuid.uuid4().hex
        claim = Claim(writer, current.version if current is not None else 0, version)
        self._verdicts[writer] = False
        sent = time.time()
        try:
            await self._send([(f"{definition_id}@claim", claim.encode())])
            won = self._verdicts[writer]
        finally:
            del self._verdicts[writer]
        if won and (time.time() - sent) * 1000 > CLAIM_TTL_MS / 2:
            # Written now, the version could land after another writer took the expired claim over.
            log.warning("definition write abandoned: its claim took too long", definition_id=definition_id)
            raise WriteContended(definition_id)
        if not won:
            raise _ClaimLost(definition_id)

    async def _catch_up(self) -> None:
        """Read the topic up to its current end, so a write starts from every earlier write."""
        if self._consumer is None or self._ends is None:
            raise RuntimeError("the definition store is not started")
        tps = list(self._consumer.assignment())
        ends = await self._ends.end_offsets(tps)
        await self._wait_for({tp.partition: off for tp, off in ends.items()})

    async def _send(self, records: list[tuple[str, bytes | None]]) -> None:
        """Produce `records` in order and wait until this view has read all of them."""
        if self._producer is None:
            producer = create_producer(self._settings)
            await start_client(producer)
            self._producer = producer
        futures = [await self._producer.send(self._topic, value, key=key.encode()) for key, value in records]
        results = await asyncio.gather(*futures, return_exceptions=True)
        offsets: dict[int, int] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            offsets[result.partition] = max(offsets.get(result.partition, 0), result.offset + 1)
        await self._wait_for(offsets)

    async def apply_directory(self, directory: Path) -> list[StoredDefinition]:
        """Create or update every definition found in `directory` (YAML, JSON, multi-document)."""
        stored = []
        for where, doc in load_definition_files([directory]):
            try:
                stored.append(await self.put(doc))
            except DefinitionError as exc:
                raise DefinitionError([e.__class__(f"{where}: {e.location}", e.message) for e in exc.errors]) from exc
        return stored


def _check_expected(definition_id: str, expected: int | None, current: StoredDefinition | None) -> None:
    have = current.version if current is not None else 0
    if expected is not None and expected != have:
        raise StaleVersion(definition_id, expected, have)


def load_definition_files(paths: Iterable[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(file#document, document) pairs; a folder contributes its *.yaml, *.yml and *.json files."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"}))
        else:
            files.append(path)
    documents: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        for index, doc in enumerate(yaml.safe_load_all(file.read_text("utf-8"))):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise DefinitionError([SchemaError(f"{file}#{index}", "a definition must be a mapping")])
            documents.append((f"{file}#{index}", doc))
    return documents

"""Workflow definitions on the compacted `<prefix>.workflows` topic, materialised in memory.

Record key: the definition id. Value: `{"id", "version", "digest", "definition": <document>}`;
a tombstone (null value) deletes. Every process that needs definitions holds a `DefinitionStore`
that reads the topic from the beginning and then follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hookline.kafka import create_consumer, create_producer, topic_partitions
from hookline.logging import get_logger
from hookline.settings import KafkaSettings
from schemas.validation import SchemaError
from schemas.workflow import DefinitionError, WorkflowDefinition, parse_definition

__all__ = ["DefinitionStore", "StoredDefinition", "load_definition_files"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    id: str
    version: int
    digest: str
    document: dict[str, Any]
    definition: WorkflowDefinition


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


class DefinitionStore:
    """The in-memory view of the definitions topic, with read-your-writes `put`."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._topic = settings.workflows_topic
        self._current: dict[str, StoredDefinition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._positions: dict[int, int] = {}
        self._advanced = asyncio.Condition()
        #: Bumped on every change, so views derived from the definitions know when to rebuild.
        self.generation = 0

    def get(self, definition_id: str) -> StoredDefinition | None:
        return self._current.get(definition_id)

    def all(self) -> list[StoredDefinition]:
        return list(self._current.values())

    async def start(self) -> None:
        """Read the topic to its end, then keep following it in the background."""
        self._consumer = create_consumer(self._settings, group_id=None, isolation_level="read_uncommitted")
        await self._consumer.start()
        tps = await topic_partitions(self._consumer, self._topic)
        if not tps:
            raise RuntimeError(f"topic {self._topic} does not exist; run `hookline stack` or create the topics")
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        ends = await self._consumer.end_offsets(tps)
        self._follow = asyncio.create_task(self._run(), name="definitions-follow")
        await self._wait_for({tp.partition: off for tp, off in ends.items()})
        log.info("definitions loaded", count=len(self._current), topic=self._topic)

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    self._apply(record.key, record.value)
                    self._positions[tp.partition] = record.offset + 1
            async with self._advanced:
                self._advanced.notify_all()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        definition_id = key.decode()
        self.generation += 1
        if value is None:
            self._current.pop(definition_id, None)
            return
        try:
            raw = orjson.loads(value)
            definition = parse_definition(raw["definition"])
            self._current[definition_id] = StoredDefinition(
                definition_id, int(raw["version"]), raw["digest"], raw["definition"], definition
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, DefinitionError) as exc:
            # A record written by a newer or broken writer must not stop this process.
            log.warning("skipping unreadable definition record", key=definition_id, error=str(exc))

    async def _wait_for(self, offsets: dict[int, int]) -> None:
        async with self._advanced:
            await self._advanced.wait_for(
                lambda: all(self._positions.get(p, 0) >= off for p, off in offsets.items() if off > 0)
            )

    async def put(self, document: dict[str, Any]) -> StoredDefinition:
        """Validate and store a new version (unchanged documents keep their version)."""
        definition = parse_definition(document)
        digest = _digest(document)
        current = self._current.get(definition.id)
        if current is not None and current.digest == digest:
            return current
        version = (current.version + 1) if current else 1
        value = orjson.dumps({"id": definition.id, "version": version, "digest": digest, "definition": document})
        if self._producer is None:
            self._producer = create_producer(self._settings)
            await self._producer.start()
        meta = await self._producer.send_and_wait(self._topic, value, key=definition.id.encode())
        await self._wait_for({meta.partition: meta.offset + 1})
        stored = self._current[definition.id]
        return stored

    async def apply_directory(self, directory: Path) -> list[StoredDefinition]:
        """Create or update every definition found in `directory` (YAML, JSON, multi-document)."""
        stored = []
        for where, doc in load_definition_files([directory]):
            try:
                stored.append(await self.put(doc))
            except DefinitionError as exc:
                raise DefinitionError([e.__class__(f"{where}: {e.location}", e.message) for e in exc.errors]) from exc
        return stored


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

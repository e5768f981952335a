"""The DLQ: what was dead-lettered and why, and re-publishing it to the topic it came from once
its cause is fixed (`hookline replay`, `POST /api/v1/dlq/replay`).

The DLQ is a topic, so a record dead-lettered again after a replay is a second record: records
of the same origin (topic, partition, offset as first consumed) and the same definition are one
`DeadLetter`, seen first and last at the times of its first and last record, and a replay sends
its latest record once.

A replayed record is the original (key, value, CloudEvents headers) without the DLQ's reason
headers, plus two of its own:

- `hookline_replay_origin`: `<topic>/<partition>/<offset>` of the record as first consumed, so a
  plain record of a `kafka` trigger's topic keeps the dedupe key it had (which is made from
  those coordinates, and the copy has new ones);
- `hookline_replay_definition`: when the record was dead-lettered for one definition (the
  others it matched were started), the copy concerns that definition only.

So replaying starts nothing twice: not what the record already started, and not itself twice
(the workflow id comes from the event's dedupe key).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition

from hookline.kafka import create_producer, read_record, read_topic, start_client
from hookline.logging import get_logger
from hookline.settings import KafkaSettings
from schemas.workflow import split_id

__all__ = [
    "DLQ_DEFINITION",
    "DLQ_HEADER_PREFIX",
    "DLQ_OMITTED",
    "REPLAY_DEFINITION",
    "REPLAY_ORIGIN",
    "DeadLetter",
    "DeadLetters",
    "ReplayResult",
    "read_dead_letters",
    "replay",
    "replay_dlq",
    "replay_origin",
    "replayed_for",
]

DLQ_HEADER_PREFIX = "hookline_dlq_"
#: The definition a dead-lettered record concerns (absent: the record itself failed).
DLQ_DEFINITION = f"{DLQ_HEADER_PREFIX}definition"
#: On a DLQ record without the original's key, value and headers (their size in bytes): with
#: them it was more than Kafka takes. A replay reads the original where it was first consumed.
DLQ_OMITTED = f"{DLQ_HEADER_PREFIX}omitted"
REPLAY_DEFINITION = "hookline_replay_definition"
REPLAY_ORIGIN = "hookline_replay_origin"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    examined: int
    selected: int
    replayed: int


@dataclass(slots=True)
class DeadLetter:
    """One record dead-lettered (perhaps several times), for one definition or for itself."""

    #: Stable across reads and replicas: a digest of the origin and the definition.
    id: str
    reason: str
    #: Where the record was read from when it was first dead-lettered.
    topic: str
    partition: int
    offset: int
    #: The definition it was dead-lettered for (None: the record itself could not be handled),
    #: its version then, and its team.
    definition: str | None
    version: int | None
    team: str | None
    event_id: str | None
    source: str | None
    type: str | None
    first_seen: datetime
    last_seen: datetime
    times: int
    #: The DLQ record to replay: the latest.
    record: ConsumerRecord[bytes, bytes] = field(repr=False)


class DeadLetters:
    """The DLQ's records folded into `DeadLetter`s, in the order they were first seen."""

    def __init__(self) -> None:
        self._by_id: dict[str, DeadLetter] = {}

    def add(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic, partition, offset = _origin(record)
        definition = _header(record, "definition") or _named(record, REPLAY_DEFINITION) or None
        key = f"{topic}/{partition}/{offset}#{definition or ''}"
        entry_id = hashlib.sha256(key.encode()).hexdigest()[:16]
        seen = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        entry = self._by_id.get(entry_id)
        if entry is not None:
            entry.reason, entry.last_seen, entry.record = _reason(record), seen, record
            entry.times += 1
            return
        version = _header(record, "version")
        self._by_id[entry_id] = DeadLetter(
            id=entry_id,
            reason=_reason(record),
            topic=topic,
            partition=partition,
            offset=offset,
            definition=definition,
            version=int(version) if version.isdecimal() else None,
            team=split_id(definition)[0] if definition else None,
            event_id=_named(record, "ce_id"),
            source=_named(record, "ce_hooklinesource") or _named(record, "ce_source"),
            type=_named(record, "ce_type"),
            first_seen=seen,
            last_seen=seen,
            times=1,
            record=record,
        )

    def all(self) -> list[DeadLetter]:
        return list(self._by_id.values())


async def read_dead_letters(settings: KafkaSettings) -> list[DeadLetter]:
    """The DLQ as it is now, folded."""
    letters = DeadLetters()
    async with contextlib.aclosing(read_topic(settings, settings.dlq_topic)) as records:
        async for record in records:
            letters.add(record)
    return letters.all()


async def replay(settings: KafkaSettings, letters: Iterable[DeadLetter]) -> int:
    """Re-publish the latest record of each of `letters` where it was read from; how many."""
    producer = create_producer(settings)
    await start_client(producer)
    sent = 0
    try:
        for letter in letters:
            record = letter.record
            # Back where it was read from: the events topic, or a `kafka` trigger's topic.
            topic = _header(record, "topic") or settings.events_topic
            if _header(record, "omitted"):
                original = await _read_original(settings, record)
                if original is None:
                    log.warning("not replayed: the record is no longer where it was read", dead_letter=letter.id)
                    continue
                # Its own key, value and headers, and what the DLQ record says of it.
                told = [h for h in record.headers or () if h[0] not in _names(original)]
                record = replace(original, headers=[*(original.headers or ()), *told])
            await producer.send_and_wait(topic, record.value, key=record.key, headers=_replayed_headers(record))
            sent += 1
    finally:
        await producer.stop()
    log.info("dlq replayed", replayed=sent)
    return sent


def _names(record: ConsumerRecord[bytes, bytes]) -> set[str]:
    return {name for name, _ in record.headers or ()}


async def _read_original(
    settings: KafkaSettings, record: ConsumerRecord[bytes, bytes]
) -> ConsumerRecord[bytes, bytes] | None:
    """The record a DLQ record without its value stands for, read where the triggers read it;
    None once that topic no longer keeps it."""
    topic, partition, offset = (_header(record, n) for n in ("topic", "partition", "offset"))
    if not (topic and partition.isdecimal() and offset.isdecimal()):
        return None
    return await read_record(settings, TopicPartition(topic, int(partition)), int(offset))


def _origin(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    """(topic, partition, offset) of the dead-lettered record as first consumed."""
    origin = _named(record, REPLAY_ORIGIN)
    if origin is None:
        origin = "/".join(_header(record, n) for n in ("topic", "partition", "offset"))
    topic, _, rest = origin.partition("/")
    partition, _, offset = rest.partition("/")
    return topic, int(partition) if partition.isdecimal() else -1, int(offset) if offset.isdecimal() else -1


def _named(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and value is not None:
            return str(value.decode(errors="replace"))
    return None


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    return _named(record, f"{DLQ_HEADER_PREFIX}{name}") or ""


def replayed_for(record: ConsumerRecord[Any, Any]) -> set[str] | None:
    """The definitions a replayed record concerns; None: every definition it matches."""
    named = _named(record, REPLAY_DEFINITION)
    return None if named is None else {named}


def replay_origin(record: ConsumerRecord[Any, Any]) -> tuple[str, int, int]:
    """(topic, partition, offset) of the record as first consumed: its own, unless it is a replay."""
    origin = _named(record, REPLAY_ORIGIN)
    if origin is not None:
        topic, _, rest = origin.partition("/")
        partition, _, offset = rest.partition("/")
        if topic == record.topic and partition.isdigit() and offset.isdigit():
            return topic, int(partition), int(offset)
    return record.topic, record.partition, record.offset


def _replayed_headers(record: ConsumerRecord[bytes, bytes]) -> list[tuple[str, bytes | None]]:
    kept = [
        (k, v)
        for k, v in record.headers or ()
        if not k.startswith(DLQ_HEADER_PREFIX) and k not in (REPLAY_DEFINITION, REPLAY_ORIGIN)
    ]
    origin = _named(record, REPLAY_ORIGIN)
    if origin is None and _header(record, "topic"):
        origin = "/".join(_header(record, n) for n in ("topic", "partition", "offset"))
    if origin is not None:
        kept.append((REPLAY_ORIGIN, origin.encode()))
    definition = _header(record, "definition") or _named(record, REPLAY_DEFINITION)
    if definition:
        kept.append((REPLAY_DEFINITION, definition.encode()))
    return kept


def _reason(record: ConsumerRecord[bytes, bytes]) -> str:
    return _header(record, "reason")


async def replay_dlq(
    settings: KafkaSettings,
    *,
    select: Callable[[str], bool] = lambda reason: True,
    dry_run: bool = False,
    on_record: Callable[[str, bool], None] | None = None,
) -> ReplayResult:
    """Re-publish the dead letters present now whose reason `select` accepts, each once;
    `on_record(reason, replayed)` is told about each one examined."""
    # Up to the end as it is now: records dead-lettered while we run wait for the next replay.
    letters = await read_dead_letters(settings)
    chosen = [letter for letter in letters if select(letter.reason)]
    if on_record is not None:
        for letter in letters:
            on_record(letter.reason, letter in chosen)
    replayed = 0 if dry_run else await replay(settings, chosen)
    return ReplayResult(len(letters), len(chosen), replayed)

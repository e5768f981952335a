"""Re-publishing dead-lettered records to the topic they came from, once their cause is fixed.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord

from hookline.kafka import create_producer, read_topic
from hookline.logging import get_logger
from hookline.settings import KafkaSettings

__all__ = [
    "DLQ_DEFINITION",
    "DLQ_HEADER_PREFIX",
    "REPLAY_DEFINITION",
    "REPLAY_ORIGIN",
    "ReplayResult",
    "replay_dlq",
    "replay_origin",
    "replayed_for",
]

DLQ_HEADER_PREFIX = "hookline_dlq_"
#: The definition a dead-lettered record concerns (absent: the record itself failed).
DLQ_DEFINITION = f"{DLQ_HEADER_PREFIX}definition"
REPLAY_DEFINITION = "hookline_replay_definition"
REPLAY_ORIGIN = "hookline_replay_origin"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    examined: int
    selected: int
    replayed: int


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
    """Re-publish the DLQ records present now whose reason `select` accepts; `on_record(reason,
    replayed)` is told about each record examined."""
    producer = create_producer(settings)
    await producer.start()
    examined = selected = replayed = 0
    try:
        # Up to the end as it is now: records dead-lettered while we run wait for the next replay.
        async with contextlib.aclosing(read_topic(settings, settings.dlq_topic)) as records:
            async for record in records:
                examined += 1
                reason = _reason(record)
                chosen = select(reason)
                selected += chosen
                if chosen and not dry_run:
                    # Back where it was read from: the events topic, or a `kafka` trigger's topic.
                    topic = _header(record, "topic") or settings.events_topic
                    headers = _replayed_headers(record)
                    await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)
                    replayed += 1
                if on_record is not None:
                    on_record(reason, chosen)
        log.info("dlq replayed", examined=examined, replayed=replayed, dry_run=dry_run)
        return ReplayResult(examined, selected, replayed)
    finally:
        await producer.stop()

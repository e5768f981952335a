"""Records that producers put on topics named by `kafka` triggers, turned into events.

A record with CloudEvents headers (binary mode), or a JSON CloudEvent as its value (structured
mode), keeps its id, source and type; any other JSON object becomes an event of type
`dev.hookline.kafka.record`. Either way the event's source name is `kafka:<topic>`, and its
dedupe key is stable across redeliveries: the CloudEvent's own (`dedupekey`, else its id), or
topic + partition + offset for plain records.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from schemas.events import HEADER_PREFIX, Event, EventDecodeError

__all__ = ["RECORD_TYPE", "event_from_record"]

RECORD_TYPE = "dev.hookline.kafka.record"


def event_from_record(record: ConsumerRecord[bytes, bytes]) -> Event:
    """The event a record of an external topic carries; raises `EventDecodeError`."""
    source = f"kafka:{record.topic}"
    headers = list(record.headers or ())
    if any(name.startswith(HEADER_PREFIX) for name, _ in headers):
        if not any(name == f"{HEADER_PREFIX}dedupekey" for name, _ in headers):
            headers += [(f"{HEADER_PREFIX}dedupekey", dict(headers).get(f"{HEADER_PREFIX}id", b""))]
        event = Event.from_kafka(record.value, headers)
        return event.model_copy(update={"hooklinesource": source})
    try:
        value: Any = orjson.loads(record.value) if record.value else None
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"record is neither a CloudEvent nor JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise EventDecodeError("record value must be a JSON object")
    key = record.key.decode(errors="replace") if record.key else ""
    if value.get("specversion") == "1.0":  # structured mode
        try:
            return Event.model_validate(
                {
                    **value,
                    "dedupekey": value.get("dedupekey") or value.get("id"),
                    "hooklinesource": source,
                    "partitionkey": key,
                }
            )
        except ValidationError as exc:
            raise EventDecodeError(f"invalid CloudEvent: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    return Event(
        id=f"{record.topic}-{record.partition}-{record.offset}",
        source=f"kafka://{record.topic}",
        type=RECORD_TYPE,
        dedupekey=f"kafka-{record.topic}-{record.partition}-{record.offset}",
        partitionkey=key,
        hooklinesource=source,
        data=value,
    )

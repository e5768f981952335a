"""Records that producers put on topics named by `kafka` triggers, turned into events.

A record with CloudEvents headers (binary mode), or a JSON CloudEvent as its value (structured
mode), keeps its id, source and type; any other JSON object becomes an event of type
`dev.hookline.kafka.record`. Either way the event's source name is `kafka:<topic>`, and its
dedupe key is stable across redeliveries and DLQ replays: the CloudEvent's own (`dedupekey`,
else its id), or topic + partition + offset of the record as first consumed for plain records.
"""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.dlq import replay_origin
from schemas.events import HEADER_PREFIX, Event, EventDecodeError, json_data

__all__ = ["MAX_ATTRIBUTE_BYTES", "RECORD_TYPE", "event_from_record"]

RECORD_TYPE = "dev.hookline.kafka.record"
#: The most an event's attributes (id, source, subject, extensions, ...) may take: a decision
#: carries them, and must fit in a Kafka record even when it leaves a large event's data out.
#: The gateway allows far less (256 characters an attribute).
MAX_ATTRIBUTE_BYTES = 64 * 1024


def event_from_record(record: ConsumerRecord[bytes, bytes]) -> Event:
    """The event a record of an external topic carries; raises `EventDecodeError`."""
    event = _event(record)
    size = sum(len(str(v).encode()) for k, v in event.__dict__.items() if k not in _NOT_ATTRIBUTES and v is not None)
    size += sum(len(k) + len(v.encode()) for k, v in event.extensions.items())
    if size > MAX_ATTRIBUTE_BYTES:
        raise EventDecodeError(f"the event's attributes take {size} bytes; at most {MAX_ATTRIBUTE_BYTES}")
    return event


_NOT_ATTRIBUTES = frozenset({"data", "extensions"})


def _event(record: ConsumerRecord[bytes, bytes]) -> Event:
    source = f"kafka:{record.topic}"
    headers = list(record.headers or ())
    if any(name.startswith(HEADER_PREFIX) for name, _ in headers):
        if not any(name == f"{HEADER_PREFIX}dedupekey" for name, _ in headers):
            headers += [(f"{HEADER_PREFIX}dedupekey", dict(headers).get(f"{HEADER_PREFIX}id", b""))]
        event = Event.from_kafka(record.value, headers)
        return event.model_copy(update={"hooklinesource": source})
    value: Any = json_data(record.value, "record", "record is neither a CloudEvent nor JSON") if record.value else None
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
    # A replayed copy has coordinates of its own; the occurrence is the record first consumed.
    topic, partition, offset = replay_origin(record)
    return Event(
        id=f"{topic}-{partition}-{offset}",
        source=f"kafka://{topic}",
        type=RECORD_TYPE,
        dedupekey=f"kafka-{topic}-{partition}-{offset}",
        partitionkey=key,
        hooklinesource=source,
        data=value,
    )

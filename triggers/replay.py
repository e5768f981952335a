"""Re-publishing dead-lettered records to the topic they came from, once their cause is fixed.

A replayed record is the original (key, value, CloudEvents headers) without the DLQ's reason
headers, so the triggers treat it as new. Replaying twice starts nothing twice: the workflow id
comes from the event's dedupe key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from hookline.kafka import create_consumer, create_producer, topic_partitions
from hookline.logging import get_logger
from hookline.settings import KafkaSettings

__all__ = ["DLQ_HEADER_PREFIX", "ReplayResult", "replay_dlq"]

DLQ_HEADER_PREFIX = "hookline_dlq_"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    examined: int
    selected: int
    replayed: int


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    for key, value in record.headers or ():
        if key == f"{DLQ_HEADER_PREFIX}{name}":
            return str(value.decode(errors="replace"))
    return ""


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
    consumer = create_consumer(settings, group_id=None)
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    examined = selected = replayed = 0
    try:
        tps = await topic_partitions(consumer, settings.dlq_topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # Up to the end as it is now: records dead-lettered while we run wait for the next replay.
        ends = {tp: off for tp, off in (await consumer.end_offsets(tps)).items() if off > 0}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(*ends, timeout_ms=500)).values():
                for record in records:
                    if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                        continue
                    examined += 1
                    reason = _reason(record)
                    chosen = select(reason)
                    selected += chosen
                    if chosen and not dry_run:
                        headers = [(k, v) for k, v in record.headers or () if not k.startswith(DLQ_HEADER_PREFIX)]
                        # Back where it was read from: the events topic, or a `kafka` trigger's topic.
                        topic = _header(record, "topic") or settings.events_topic
                        await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)
                        replayed += 1
                    if on_record is not None:
                        on_record(reason, chosen)
        log.info("dlq replayed", examined=examined, replayed=replayed, dry_run=dry_run)
        return ReplayResult(examined, selected, replayed)
    finally:
        await producer.stop()
        await consumer.stop()

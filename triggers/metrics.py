"""Prometheus metrics of the triggers service: counted as records are handled, and read when
scraped (the consumer's lag, the DLQ's size, whether the schedule ticker runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer
from prometheus_client.core import GaugeMetricFamily

from hookline.kafka import create_consumer, start_client, topic_partitions
from hookline.metrics import LoopCounter, LoopHistogram, Registry, Scraped
from hookline.settings import KafkaSettings

__all__ = ["ConsumerLag", "DlqSize", "TickerUp", "TriggersMetrics", "consumer_lag", "dlq_records"]


class TriggersMetrics:
    """Counted on the service's event loop, per record: loop-local metrics (no lock per count)."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.events_consumed = LoopCounter(
            "hookline_triggers_events_consumed_total", "Records read from the events topic", [], self.registry
        )
        self.workflows_started = LoopCounter(
            "hookline_triggers_workflows_started_total",
            "Events delivered to workflows by outcome: started, existing, signalled, cancelled, already ended, ignored",
            ["definition", "outcome"],
            self.registry,
        )
        self.temporal_retries = LoopCounter(
            "hookline_triggers_temporal_retries_total",
            "Requests to Temporal retried because it was unreachable",
            [],
            self.registry,
        )
        self.eager_starts = LoopCounter(
            "hookline_triggers_eager_starts_total",
            "Runs started eagerly (triggers.interpreter): their first workflow task came back with the start, "
            "to this process's interpreter",
            [],
            self.registry,
        )
        self.kafka_retries = LoopCounter(
            "hookline_triggers_kafka_retries_total",
            "Writes to Kafka (decisions, DLQ records) retried because Kafka was unreachable",
            [],
            self.registry,
        )
        self.dead_lettered = LoopCounter(
            "hookline_triggers_dead_lettered_total", "Records sent to the DLQ", [], self.registry
        )
        self.schedule_failures = LoopCounter(
            "hookline_triggers_schedule_failures_total",
            "Ticks of a schedule that failed (the schedule is retried with backoff; the others tick on)",
            ["definition"],
            self.registry,
        )
        self.start_latency = LoopHistogram(
            "hookline_triggers_start_latency_seconds",
            "Time to start (or find) one workflow",
            [],
            self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.decision_latency = LoopHistogram(
            "hookline_triggers_decision_write_seconds",
            "Time to record one event's decision on the decisions topic, until Kafka's ack (what the "
            "decision record adds to each event, after its starts)",
            [],
            self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def watch(
        self,
        consumer: Callable[[], AIOKafkaConsumer | None],
        kafka: KafkaSettings,
        ticker_problem: Callable[[], Awaitable[str | None]] | None,
    ) -> None:
        """Register what is read when scraped: the lag of `consumer()` (the service's current
        consumer, replaced when its topics change), the DLQ's size, and the ticker's state if
        this process runs one (`ticker_problem`, its liveness check)."""
        self.registry.register(ConsumerLag(lambda: consumer_lag(consumer())))
        self.registry.register(DlqSize(lambda: dlq_records(kafka)))
        if ticker_problem is not None:
            self.registry.register(TickerUp(ticker_problem))


async def consumer_lag(consumer: AIOKafkaConsumer | None) -> dict[tuple[str, int], int]:
    """(topic, partition) → records of each partition assigned to `consumer` not yet handled.

    Measured from the end offset (asked of the broker, so it moves while the consumer stalls;
    the highwater of the last fetch would not) to the group's committed offset, since offsets are
    committed only behind finished records: records in flight are lag too. A partition with no
    commit yet is measured from the consumer's position. None (no consumer yet): no partitions.
    """
    if consumer is None:
        return {}
    partitions = sorted(consumer.assignment())
    if not partitions:
        return {}
    ends = await consumer.end_offsets(partitions)
    committed = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
    lag = {}
    for tp, done in zip(partitions, committed, strict=True):
        handled = done if done is not None else await consumer.position(tp)
        lag[(tp.topic, tp.partition)] = max(0, ends[tp] - handled)
    return lag


async def dlq_records(settings: KafkaSettings) -> int:
    """Records in the DLQ topic now (its end offsets minus its beginning offsets), through a
    consumer of its own that joins no group: the service's consumer tracks the topics it
    consumes, and is replaced when they change."""
    consumer = create_consumer(settings, group_id=None)
    await start_client(consumer)  # stopped if it does not start (or its read runs out of time meanwhile)
    try:  # and stopped when the read runs out of time: it is made every read
        partitions = await topic_partitions(consumer, settings.dlq_topic)
        if not partitions:
            return 0
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


class ConsumerLag(Scraped[Mapping[tuple[str, int], int]]):
    """`hookline_triggers_consumer_lag{topic, partition}` from a read such as `consumer_lag`."""

    def families(self, value: Mapping[tuple[str, int], int]) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "hookline_triggers_consumer_lag",
            "Records of an assigned partition not yet handled and committed",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(value.items()):
            lag.add_metric([topic, str(partition)], records)
        return [lag]


class DlqSize(Scraped[int]):
    """`hookline_dlq_records` from a read such as `dlq_records`."""

    def __init__(self, read: Callable[[], Awaitable[int]]) -> None:
        # A consumer is opened for each read: not more often than this.
        super().__init__(read, timeout_s=5.0, ttl_s=30.0)

    def families(self, value: int) -> Iterable[GaugeMetricFamily]:
        records = GaugeMetricFamily(
            "hookline_dlq_records", "Records in the DLQ topic (replayed or not, until its retention)", value
        )
        return [records]


class TickerUp(Scraped[bool]):
    """`hookline_triggers_ticker_up`: 1 while the schedule ticker runs, 0 once it died. Register
    it only in a process that runs a ticker: the others report nothing."""

    def __init__(self, problem: Callable[[], Awaitable[str | None]]) -> None:
        async def up() -> bool:
            return await problem() is None

        super().__init__(up, ttl_s=0.0)

    def families(self, value: bool) -> Iterable[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "hookline_triggers_ticker_up", "1 while the schedule ticker runs, 0 once it has died", int(value)
            )
        ]

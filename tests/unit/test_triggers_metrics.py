"""The triggers' metrics read when scraped: consumer lag per partition, the DLQ's size, and
whether the schedule ticker runs (the Kafka reads themselves against a fake consumer: the
arithmetic, not the broker)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from hookline.metrics import Scraped
from hookline.settings import KafkaSettings
from hookline.stack import free_port
from triggers.metrics import ConsumerLag, DlqSize, TickerUp, TriggersMetrics, consumer_lag, dlq_records


class FakeConsumer:
    """Ends, commits and positions by partition, as aiokafka's consumer answers them."""

    def __init__(self, ends: dict[TopicPartition, int], committed: dict[TopicPartition, int | None]) -> None:
        self.ends = ends
        self.commits = committed
        self.positions = {tp: 0 for tp in ends}

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


async def samples(collector: Scraped[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = TriggersMetrics().registry
    registry.register(collector)
    await registry.refresh()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name in {"hookline_triggers_consumer_lag", "hookline_dlq_records", "hookline_triggers_ticker_up"}
    }


async def value(value: Any) -> Any:
    return value


async def test_lag_is_the_end_offset_minus_the_committed_offset() -> None:
    events0, events1 = TopicPartition("hl.events", 0), TopicPartition("hl.events", 1)
    consumer = FakeConsumer({events0: 120, events1: 7}, {events0: 100, events1: 7})
    assert await consumer_lag(consumer) == {("hl.events", 0): 20, ("hl.events", 1): 0}  # type: ignore[arg-type]


async def test_a_partition_without_a_commit_is_measured_from_the_position() -> None:
    tp = TopicPartition("ci", 2)
    consumer = FakeConsumer({tp: 50}, {tp: None})
    consumer.positions[tp] = 45
    assert await consumer_lag(consumer) == {("ci", 2): 5}  # type: ignore[arg-type]


async def test_no_consumer_yet_has_no_lag() -> None:
    assert await consumer_lag(None) == {}


async def test_consumer_lag_is_exposed_per_topic_and_partition() -> None:
    found = await samples(ConsumerLag(lambda: value({("hl.events", 0): 20, ("ci", 3): 1})))
    assert found == {
        ("hookline_triggers_consumer_lag", (("partition", "0"), ("topic", "hl.events"))): 20,
        ("hookline_triggers_consumer_lag", (("partition", "3"), ("topic", "ci"))): 1,
    }


async def test_dlq_size_is_exposed() -> None:
    assert await samples(DlqSize(lambda: value(12))) == {("hookline_dlq_records", ()): 12}


async def test_ticker_is_up_while_it_has_no_problem_and_down_once_it_has() -> None:
    async def fine() -> str | None:
        return None

    async def died() -> str | None:
        return "the schedule ticker stopped: KafkaError"

    assert await samples(TickerUp(fine)) == {("hookline_triggers_ticker_up", ()): 1}
    assert await samples(TickerUp(died)) == {("hookline_triggers_ticker_up", ()): 0}


def unreachable() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")


async def test_the_dlq_reader_closes_its_consumer_when_kafka_is_unreachable() -> None:
    with pytest.raises(KafkaConnectionError):
        await dlq_records(unreachable())
    gc.collect()  # an unclosed consumer warns when collected: an error under filterwarnings


@pytest.mark.parametrize("runs_ticker", [True, False])
async def test_watch_reports_the_ticker_only_where_one_runs(runs_ticker: bool) -> None:
    async def fine() -> str | None:
        return None

    metrics = TriggersMetrics()
    metrics.watch(lambda: None, unreachable(), fine if runs_ticker else None)
    await metrics.registry.refresh()
    assert metrics.registry.get_sample_value("hookline_triggers_ticker_up") == (1 if runs_ticker else None)
    assert metrics.registry.get_sample_value("hookline_dlq_records") is None  # Kafka did not answer

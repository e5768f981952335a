"""The triggers' stall watchdog (liveness): a consumer that takes and commits nothing while records
wait is reported, so the supervisor replaces the process; waiting for Temporal, an idle topic and
an unreachable Kafka are not stalls."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from temporalio.client import Client

from hookline.settings import KafkaSettings
from schemas.agents import AgentCatalog
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings

TP = TopicPartition("hookline.events", 0)


class Consumer:
    """The consumer calls the lag is read with: end offset 10, committed `committed`."""

    def __init__(self, committed: int, *, broken: bool = False) -> None:
        self._committed, self._broken = committed, broken

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self._broken:
            raise ConnectionError("Kafka is away")
        return {TP: 10}

    async def committed(self, tp: TopicPartition) -> int:
        return self._committed

    async def position(self, tp: TopicPartition) -> int:
        return self._committed


def service(consumer: Consumer, *, quiet_for_s: float) -> TriggersService:
    settings = TriggersSettings(kafka=KafkaSettings(), triggers=TriggersOptions(stall_s=60))
    running = TriggersService(settings, cast(Client, object()), agents=AgentCatalog(agents={}))
    running._consumer = cast(Any, consumer)
    running.consuming = True
    running._progress_at = time.monotonic() - quiet_for_s
    return running


async def test_records_waiting_and_nothing_taken_for_longer_than_stall_s_is_a_stall() -> None:
    problem = await service(Consumer(committed=4), quiet_for_s=90).stall_problem()
    assert problem is not None and problem.startswith("6 records wait")


@pytest.mark.parametrize(
    ("consumer", "quiet_for_s"),
    [
        (Consumer(committed=4), 30),  # not for long enough
        (Consumer(committed=10), 90),  # nothing waits: idle, not stalled
        (Consumer(committed=4, broken=True), 90),  # Kafka away: a restart would not help
    ],
)
async def test_no_stall(consumer: Consumer, quiet_for_s: float) -> None:
    assert await service(consumer, quiet_for_s=quiet_for_s).stall_problem() is None


async def test_records_being_handled_are_not_a_stall() -> None:
    running = service(Consumer(committed=4), quiet_for_s=90)
    running._inflight._running[TP].add(cast(Any, object()))  # one record in the hands of a starter
    assert await running.stall_problem() is None

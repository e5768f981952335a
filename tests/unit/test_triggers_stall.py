"""The triggers' stall watchdog (liveness): a consumer that takes and commits nothing while records
wait is reported, so the supervisor replaces the process, and so is a consumer that gets no answer
while Kafka answers a new client; waiting for Temporal, an idle topic and an unreachable Kafka are
not stalls."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, cast

import pytest
from aiokafka import TopicPartition
from temporalio.client import Client

from hookline.settings import KafkaSettings
from schemas.agents import AgentCatalog
from triggers import app
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings

TP = TopicPartition("hookline.events", 0)


class Consumer:
    """The consumer calls the lag is read with: end offset 10, committed `committed`."""

    def __init__(self, committed: int, *, broken: Literal["raises", "hangs"] | None = None) -> None:
        self._committed, self._broken = committed, broken

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self._broken == "raises":
            raise ConnectionError("Kafka is away")
        if self._broken == "hangs":  # its client waits for metadata that never comes
            await asyncio.Event().wait()
        return {TP: 10}

    async def committed(self, tp: TopicPartition) -> int:
        return self._committed

    async def position(self, tp: TopicPartition) -> int:
        return self._committed


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether Kafka answers a new client (the watchdog's probe), as the test appends it."""
    answers: list[bool] = []

    async def kafka_answers(bootstrap_servers: str, timeout_s: float) -> bool:
        assert timeout_s < 2.0
        return answers[-1]

    monkeypatch.setattr(app, "kafka_answers", kafka_answers)
    return answers


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
        (Consumer(committed=4, broken="raises"), 90),  # Kafka away: a restart would not help
        (Consumer(committed=4, broken="hangs"), 90),  # the same, when the read waits
    ],
)
async def test_no_stall(consumer: Consumer, quiet_for_s: float, kafka: list[bool]) -> None:
    kafka.append(False)  # Kafka does not answer a new client either
    assert await service(consumer, quiet_for_s=quiet_for_s).stall_problem() is None


@pytest.mark.parametrize("broken", ["raises", "hangs"])
async def test_a_consumer_without_answers_while_kafka_answers_others_is_a_stall(
    broken: Literal["raises", "hangs"], kafka: list[bool]
) -> None:
    kafka.append(True)
    started = time.monotonic()
    problem = await service(Consumer(committed=4, broken=broken), quiet_for_s=90).stall_problem()
    assert problem is not None and problem.startswith("the consumer gets no answer from Kafka"), problem
    assert time.monotonic() - started < 2.0  # inside the health check's time: a problem, not a timeout


async def test_records_being_handled_are_not_a_stall() -> None:
    running = service(Consumer(committed=4), quiet_for_s=90)
    running._inflight._running[TP].add(cast(Any, object()))  # one record in the hands of a starter
    assert await running.stall_problem() is None

"""Records in flight: concurrent handling, commit points in order per partition."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from triggers.inflight import InFlight

TP0, TP1 = TopicPartition("events", 0), TopicPartition("events", 1)


def record(partition: int, offset: int) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord("events", partition, offset, 0, 0, None, None, None, 0, 0, [])


class Gate:
    """A handler per offset that finishes when the test says so."""

    def __init__(self) -> None:
        self.release: dict[tuple[int, int], asyncio.Event] = {}
        self.fail: set[tuple[int, int]] = set()

    async def __call__(self, r: ConsumerRecord[Any, Any]) -> None:
        await self.release.setdefault((r.partition, r.offset), asyncio.Event()).wait()
        if (r.partition, r.offset) in self.fail:
            raise RuntimeError("boom")

    async def open(self, inflight: InFlight, *keys: tuple[int, int]) -> None:
        for key in keys:
            self.release.setdefault(key, asyncio.Event()).set()
        await asyncio.sleep(0.01)


async def test_commit_points_wait_for_the_lowest_offset_still_in_flight() -> None:
    inflight, gate = InFlight(limit=10), Gate()
    for offset in (5, 6, 7):
        inflight.dispatch(record(0, offset), gate)
    inflight.dispatch(record(1, 0), gate)
    await gate.open(inflight, (0, 6), (0, 7), (1, 0))
    assert inflight.commit_points() == {TP0: 5, TP1: 1}  # 5 is still going
    inflight.committed(inflight.commit_points())
    await gate.open(inflight, (0, 5))
    assert inflight.commit_points() == {TP0: 8}
    inflight.committed({TP0: 8})
    assert inflight.commit_points() == {}


async def test_a_failed_or_cancelled_record_is_never_committed_past() -> None:
    inflight, gate = InFlight(limit=10), Gate()
    gate.fail.add((0, 1))
    for offset in (1, 2):
        inflight.dispatch(record(0, offset), gate)
    inflight.dispatch(record(1, 4), gate)
    await gate.open(inflight, (0, 1), (0, 2))
    assert isinstance(inflight.failure, RuntimeError)
    inflight.cancel()
    await inflight.drain()
    assert inflight.commit_points() == {TP0: 1, TP1: 4}


async def test_room_is_the_limit_minus_what_is_in_flight() -> None:
    inflight, gate = InFlight(limit=2), Gate()
    assert await inflight.room(0.01) == 2
    inflight.dispatch(record(0, 0), gate)
    inflight.dispatch(record(0, 1), gate)
    assert await inflight.room(0.01) == 0
    waiting = asyncio.create_task(inflight.room(5))
    await gate.open(inflight, (0, 0))
    assert await waiting == 1


async def test_drain_waits_only_for_the_partitions_named_and_forget_drops_them() -> None:
    inflight, gate = InFlight(limit=10), Gate()
    inflight.dispatch(record(0, 0), gate)
    inflight.dispatch(record(1, 0), gate)
    draining = asyncio.create_task(inflight.drain([TP1]))
    await asyncio.sleep(0.01)
    assert not draining.done()
    await gate.open(inflight, (1, 0))
    await asyncio.wait_for(draining, 1)
    inflight.forget([TP1])
    assert inflight.commit_points() == {TP0: 0}
    inflight.cancel()


def keyed(partition: int, offset: int, key: bytes | None) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord("events", partition, offset, 0, 0, key, None, None, 0, 0, [])


class Order(Gate):
    """A gate that notes the order in which handlers start and finish."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[int] = []
        self.finished: list[int] = []

    async def __call__(self, r: ConsumerRecord[Any, Any]) -> None:
        self.started.append(r.offset)
        await super().__call__(r)
        self.finished.append(r.offset)


async def test_records_with_the_same_key_are_handled_one_after_another_in_offset_order() -> None:
    inflight, gate = InFlight(limit=10), Order()
    for offset in (1, 2, 3):
        inflight.dispatch(keyed(0, offset, b"alert-1"), gate)
    await gate.open(inflight, (0, 3), (0, 2))  # the later ones are ready first
    assert gate.started == [1] and gate.finished == []
    await gate.open(inflight, (0, 1))
    assert gate.finished == [1, 2, 3]
    assert inflight.commit_points() == {TP0: 4}


async def test_records_with_other_keys_or_none_are_not_held_back() -> None:
    inflight, gate = InFlight(limit=10), Order()
    inflight.dispatch(keyed(0, 1, b"alert-1"), gate)
    inflight.dispatch(keyed(0, 2, b"alert-2"), gate)
    inflight.dispatch(keyed(0, 3, None), gate)
    inflight.dispatch(keyed(0, 4, None), gate)
    inflight.dispatch(keyed(1, 5, b"alert-1"), gate)  # the same key on another partition
    for key in ((0, 4), (0, 3), (0, 2), (1, 5)):  # each finishes while alert-1 at offset 1 waits
        await gate.open(inflight, key)
        assert gate.finished[-1] == key[1]
    assert inflight.commit_points() == {TP0: 1, TP1: 6}
    inflight.cancel()


async def test_after_a_failed_record_the_next_of_its_key_is_not_handled() -> None:
    inflight, gate = InFlight(limit=10), Order()
    gate.fail.add((0, 1))
    inflight.dispatch(keyed(0, 1, b"alert-1"), gate)
    inflight.dispatch(keyed(0, 2, b"alert-1"), gate)
    await gate.open(inflight, (0, 2), (0, 1))
    assert isinstance(inflight.failure, RuntimeError)
    assert gate.started == [1]
    await inflight.drain()
    assert inflight.commit_points() == {TP0: 1}

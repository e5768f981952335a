"""Records in flight, and the offsets that may be committed.

Records are handled concurrently, up to a limit, as they arrive: no batch waits for its slowest
record. A partition's commit point is its lowest offset not yet handled (or one past the last
one dispatched when none is pending), so commits stay in order per partition whatever order the
records finish in. A record whose handling was cancelled (the service stopping) or failed stays
pending: nothing at or after it is committed, and the next owner of the partition reads it again.

Records with the same key in a partition (one alert's firing and resolved) are handled one
after another, in offset order: each waits for the one before it, so they reach the starter in
the order they were produced. Records of other keys, or without a key, are not held back. A
record waiting for its predecessor counts against the limit; if the predecessor failed or was
cancelled, it is not handled and stays pending.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

__all__ = ["InFlight"]

Handler = Callable[[ConsumerRecord[Any, Any]], Awaitable[None]]


class InFlight:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: dict[TopicPartition, set[int]] = defaultdict(set)
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._running: dict[TopicPartition, set[asyncio.Task[None]]] = defaultdict(set)
        # The last record dispatched per (partition, key), which the next one of that key awaits.
        self._last: dict[tuple[TopicPartition, bytes], asyncio.Task[None]] = {}
        self._changed = asyncio.Condition()
        #: The first unexpected error of a handler; the service stops on it.
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        return sum(len(tasks) for tasks in self._running.values())

    def dispatch(self, record: ConsumerRecord[Any, Any], handler: Handler) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self._pending[tp].add(record.offset)
        self._next[tp] = max(self._next.get(tp, 0), record.offset + 1)
        chain = (tp, record.key) if record.key is not None else None
        before = self._last.get(chain) if chain is not None else None
        task = asyncio.create_task(
            self._handle(tp, record, handler, before), name=f"record {tp.partition}:{record.offset}"
        )
        self._running[tp].add(task)
        if chain is not None:
            self._last[chain] = task
            task.add_done_callback(lambda done: self._last.pop(chain) if self._last.get(chain) is done else None)

    async def _handle(
        self,
        tp: TopicPartition,
        record: ConsumerRecord[Any, Any],
        handler: Handler,
        before: asyncio.Task[None] | None,
    ) -> None:
        try:
            if before is not None:
                await asyncio.wait({before})  # its outcome is its own; only whether it got through matters
                if before.cancelled() or self.failure is not None:
                    return  # stays pending: the service is stopping or failed
            await handler(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = self.failure or exc
        else:
            self._pending[tp].discard(record.offset)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._running[tp].discard(task)
            async with self._changed:
                self._changed.notify_all()

    async def room(self, timeout: float) -> int:
        """How many more records may be dispatched, waiting up to `timeout` for one to finish."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self) < self._limit), timeout)
            except TimeoutError:
                pass
        return max(0, self._limit - len(self))

    async def drain(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Wait until no record of `partitions` (default: all) is being handled."""
        chosen = list(self._running) if partitions is None else list(partitions)
        async with self._changed:
            await self._changed.wait_for(lambda: all(not self._running[tp] for tp in chosen))

    def cancel(self) -> None:
        for tasks in self._running.values():
            for task in tasks:
                task.cancel()

    def commit_points(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Partition → offset to commit, where it moved since the last commit."""
        chosen = self._next if partitions is None else {tp: self._next[tp] for tp in partitions if tp in self._next}
        points = {}
        for tp, after_last in chosen.items():
            pending = self._pending[tp]
            point = min(pending) if pending else after_last
            if point > self._committed.get(tp, -1):
                points[tp] = point
        return points

    def committed(self, points: dict[TopicPartition, int]) -> None:
        self._committed.update(points)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop what is known of partitions handed to another consumer."""
        gone = set(partitions)
        for tp in gone:
            for table in (self._pending, self._next, self._committed, self._running):
                table.pop(tp, None)
        for chain in [c for c in self._last if c[0] in gone]:
            del self._last[chain]

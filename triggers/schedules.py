"""Schedule triggers: an in-process ticker that puts tick events on the events topic.

The ticker lives in the triggers service: that process already follows the definitions, and
any number of replicas may tick at once, because a tick's dedupe key is schedule + slot time:
two tickers emitting the same slot start one run. The last slot each schedule ticked is kept on
a compacted topic, so a ticker that was down knows which slots it missed and applies the
trigger's `missed` policy: `skip` them, run `once` for the latest (default), or `all` (at most
`max_missed`, the latest ones). A slot is missed when it is more than `grace` late.

Ticks are the events of `schemas.ticks`: the same for this ticker and an external scheduler
posting to the gateway's `/ticks`. A trigger without `cron` is ticked only from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from croniter import croniter

from hookline.definitions import DefinitionStore, StoredDefinition
from hookline.kafka import create_producer, read_topic, start_client
from hookline.logging import get_logger
from hookline.retry import Backoff
from hookline.settings import KafkaSettings
from schemas.ticks import schedule_id, tick_event

__all__ = ["Schedule", "ScheduleFailure", "Ticker", "due_slots", "schedules_of"]

log = get_logger(__name__)
#: A schedule that cannot tick is tried again from 10 s to 10 min later: it must not cost every round.
_FAILED_BACKOFF = Backoff(first_s=10.0, max_s=600.0)


@dataclass(frozen=True, slots=True)
class ScheduleFailure:
    """A schedule whose tick failed: how many times in a row, the last error, when to try again."""

    count: int
    error: str
    retry_at: datetime


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    definition_id: str
    index: int
    cron: str
    timezone: str
    jitter_s: float
    missed: Literal["skip", "once", "all"]
    max_missed: int

    def slots(self, after: datetime, until: datetime) -> list[datetime]:
        """Slot times s with after < s <= until, in UTC."""
        out: list[datetime] = []
        it = croniter(self.cron, after.astimezone(ZoneInfo(self.timezone)), second_at_beginning=True)
        while (slot := it.get_next(datetime).astimezone(UTC)) <= until:
            out.append(slot)
        return out

    def next_slot(self, after: datetime) -> datetime:
        it = croniter(self.cron, after.astimezone(ZoneInfo(self.timezone)), second_at_beginning=True)
        return it.get_next(datetime).astimezone(UTC)

    def offset(self, slot: datetime) -> timedelta:
        """This slot's jitter: the same in every replica, so they agree when a tick is due."""
        if self.jitter_s <= 0:
            return timedelta(0)
        digest = hashlib.sha256(f"{self.id}@{slot.isoformat()}".encode()).digest()
        return timedelta(seconds=int.from_bytes(digest[:4]) / 2**32 * self.jitter_s)


def schedules_of(definitions: Iterable[StoredDefinition]) -> list[Schedule]:
    return [
        Schedule(
            schedule_id(stored.id, i),
            stored.id,
            i,
            t.cron or "",
            t.timezone,
            t.jitter,
            t.missed,
            t.max_missed,
        )
        for stored in definitions
        for i, t in enumerate(stored.definition.triggers)
        if t.type == "schedule" and t.cron
    ]


def due_slots(schedule: Schedule, last: datetime, now: datetime, grace: timedelta) -> tuple[list[datetime], datetime]:
    """The slots to tick now, given the last one ticked, and the new "last": every on-time
    slot, and of the missed ones what the schedule's policy keeps. (Keep `jitter` below the
    schedule's interval: a slot is due once its own jittered time has come.)"""
    due = [s for s in schedule.slots(last, now) if s + schedule.offset(s) <= now]
    if not due:
        return [], last
    missed = [s for s in due if now - (s + schedule.offset(s)) > grace]
    on_time = due[len(missed) :]
    if schedule.missed == "skip":
        kept: list[datetime] = []
    elif schedule.missed == "once":
        kept = missed[-1:]
    else:
        kept = missed[-schedule.max_missed :]
    return kept + on_time, due[-1]


class Ticker:
    """Emits the ticks of every schedule the definitions declare, until cancelled."""

    def __init__(
        self,
        settings: KafkaSettings,
        definitions: DefinitionStore,
        *,
        grace: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._definitions = definitions
        self._grace = grace
        self._clock = clock
        self._last: dict[str, datetime] = {}
        self._producer: AIOKafkaProducer | None = None
        self._stop = asyncio.Event()
        self._on_failure = on_failure
        #: Schedules whose last tick failed, by schedule id.
        self.failures: dict[str, ScheduleFailure] = {}

    def stop(self) -> None:
        self._stop.set()

    async def open(self) -> None:
        """Read what was ticked before and connect the producer."""
        await self._load_state()
        self._producer = create_producer(self._settings)
        await start_client(self._producer)

    async def close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()

    async def run(self) -> None:
        """Tick until `stop()`."""
        await self.open()
        try:
            while not self._stop.is_set():
                delay = await self.tick_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            await self.close()

    async def tick_once(self) -> float:
        """Emit what is due; returns how long to sleep before looking again. A schedule that fails
        (anything but Kafka failing) is reported and retried later; the others tick on."""
        assert self._producer is not None
        now = self._clock()
        wake = now + timedelta(seconds=1)  # also picks up new and changed definitions
        for schedule in schedules_of(self._definitions.all()):
            failing = self.failures.get(schedule.id)
            if failing is not None and now < failing.retry_at:
                continue
            try:
                upcoming = await self._tick(schedule, now)
            except (KafkaError, OSError):
                raise  # the ticker's own infrastructure: the service retries the whole ticker
            except Exception as exc:  # this schedule's fault alone
                self._failed(schedule, now, exc)
                await self._record(schedule.id)
                continue
            if failing is not None:
                log.info("schedule ticks again", schedule=schedule.id, after_failures=failing.count)
                del self.failures[schedule.id]
                await self._record(schedule.id)
            wake = min(wake, upcoming)
        return max(0.0, (wake - self._clock()).total_seconds())

    async def _tick(self, schedule: Schedule, now: datetime) -> datetime:
        """Emit `schedule`'s due slots; returns when it is next due."""
        assert self._producer is not None
        last = self._last.setdefault(schedule.id, now)  # a new schedule starts from now
        slots, newest = due_slots(schedule, last, now, self._grace)
        for slot in slots:
            event = tick_event(
                schedule.definition_id, schedule.index, slot, cron=schedule.cron, timezone=schedule.timezone
            )
            key, value, headers = event.to_kafka()
            await self._producer.send_and_wait(self._settings.events_topic, value, key=key, headers=headers)
        if newest != last:
            # Recorded after the ticks are durable: a crash in between re-ticks (same dedupe
            # keys, so no second run) rather than loses a slot.
            self._last[schedule.id] = newest
            await self._record(schedule.id)
            log.info("ticked", schedule=schedule.id, slots=[s.isoformat() for s in slots], up_to=newest.isoformat())
        upcoming = schedule.next_slot(self._last[schedule.id])
        return upcoming + schedule.offset(upcoming)

    async def _record(self, schedule_id: str) -> None:
        """The schedule's state on the compacted schedules topic: its last slot (what a ticker
        starting later resumes from) and, while it fails, why (what the API shows)."""
        assert self._producer is not None
        last = self._last.get(schedule_id)
        state: dict[str, object] = {"last": last.isoformat() if last is not None else None}
        if (failing := self.failures.get(schedule_id)) is not None:
            state["failing"] = {
                "count": failing.count,
                "error": failing.error,
                "retry_at": failing.retry_at.isoformat(),
            }
        await self._producer.send_and_wait(
            self._settings.schedules_topic, orjson.dumps(state), key=schedule_id.encode()
        )

    def _failed(self, schedule: Schedule, now: datetime, exc: Exception) -> None:
        previous = self.failures.get(schedule.id)
        count = previous.count + 1 if previous is not None else 1
        retry_in = timedelta(seconds=_FAILED_BACKOFF.delay(count))
        self.failures[schedule.id] = ScheduleFailure(count, f"{type(exc).__name__}: {exc}"[:300], now + retry_in)
        if self._on_failure is not None:
            self._on_failure(schedule.definition_id)
        log.error(
            "schedule failed; the other schedules tick on",
            schedule=schedule.id,
            definition=schedule.definition_id,
            failures=count,
            error=self.failures[schedule.id].error,
            retry_in_s=retry_in.total_seconds(),
        )

    async def _load_state(self) -> None:
        async with contextlib.aclosing(read_topic(self._settings, self._settings.schedules_topic)) as records:
            async for record in records:
                if record.key is None or record.value is None:
                    continue
                with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    self._last[record.key.decode()] = datetime.fromisoformat(orjson.loads(record.value)["last"])
        log.info("ticker state loaded", schedules=len(self._last))

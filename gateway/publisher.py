"""Publishing events to Kafka: 2xx only once every event of a request is acknowledged, and the
events of one request become visible to the triggers all together or not at all.

A request of one event is one record: the idempotent producer writes it or not. A request of
several (an Alertmanager group, a CloudEvents batch) is written in a Kafka transaction by one of
a small pool of transactional producers; the triggers read with `read_committed`, so a failure
between two events of a request (a broker gone, a record refused) aborts them all and the
sender's retry is the only copy that counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import filterfalse
from operator import methodcaller
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from gateway.errors import PayloadTooLarge, Unavailable
from gateway.metrics import GatewayMetrics
from gateway.record_sender import RecordSender
from gateway.settings import KAFKA_MESSAGE_BYTES
from hookline.kafka import create_producer, start_client
from hookline.logging import get_logger
from hookline.retry import Backoff, retry
from hookline.settings import KafkaSettings
from hookline.tracing import current_traceparent
from hookline.tracing import enabled as tracing_enabled
from schemas.events import Event

__all__ = ["EventPublisher"]

log = get_logger(__name__)


class DeadlineWatch:
    """Bounds waits that share one timeout with a single periodic timer.

    A timer per request (`asyncio.timeout`) was the largest single cost on the ingest path: every
    request armed and cancelled a loop timer. Here a waiter goes into the bucket of the current
    tick (a list append), and one task fails what is still pending in each bucket once
    `timeout_s` has passed since the bucket closed: a wait fails between `timeout_s` and
    `timeout_s + 2 * tick_s` after it began (plus whatever the loop is late), never earlier.
    Settled futures are dropped when their bucket closes and skipped when it expires, in C
    (`filterfalse`), not one Python step each.
    """

    def __init__(self, timeout_s: float, tick_s: float = 0.1) -> None:
        self._timeout_s = timeout_s
        self._tick_s = tick_s
        self._current: list[asyncio.Future[Any]] = []
        #: Closed buckets, oldest first, each with the loop time it closed.
        self._closed: deque[tuple[float, list[asyncio.Future[Any]]]] = deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._expire(), name="produce-deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_one(self, future: asyncio.Future[Any]) -> None:
        """Wait for `future` itself, which fails with TimeoutError at the deadline if nothing
        settled it. The single-record path: no waiter of its own, no callback, no extra loop
        turn (aiokafka skips a delivery future that is already done when the ack comes)."""
        if not future.done():
            self._current.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise  # this request was cancelled, not the produce
            raise KafkaError("produce cancelled") from None

    async def wait_all(self, futures: Sequence[asyncio.Future[Any]]) -> None:
        """Wait until every future is done; the first failure, or TimeoutError at the deadline."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        remaining = len(futures)

        def settle(future: asyncio.Future[Any]) -> None:
            nonlocal remaining
            # Retrieved even when the waiter is settled, so a second failure is not logged later
            # as "exception never retrieved".
            exc = None if future.cancelled() else future.exception()
            if waiter.done():
                return
            if future.cancelled():
                waiter.set_exception(KafkaError("produce cancelled"))
            elif exc is not None:
                waiter.set_exception(exc)
            else:
                remaining -= 1
                if remaining == 0:
                    waiter.set_result(None)

        for future in futures:
            future.add_done_callback(settle)
        if remaining == 0:
            return
        self._current.append(waiter)
        await waiter

    async def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        closed = self._closed
        while True:
            await asyncio.sleep(self._tick_s)
            now = loop.time()
            if self._current:
                # Most are acknowledged by now: only the pending ones are kept (and their results
                # released) for the rest of the timeout.
                closed.append((now, list(filterfalse(_settled, self._current))))
                self._current = []
            while closed and closed[0][0] + self._timeout_s <= now:
                for waiter in filterfalse(_settled, closed.popleft()[1]):
                    waiter.set_exception(TimeoutError(f"no ack within {self._timeout_s:g}s"))


_settled = methodcaller("done")  # any future's own done(), called from C


#: How long an aborted request waits for its transaction's abort before replacing the producer.
_ABORT_WAIT_S = 1.0
#: Between attempts to start a producer while Kafka is unreachable.
_CONNECT_BACKOFF = Backoff(first_s=0.2, max_s=5.0)
#: Records with a larger value go through `send()`, which refuses one over `max_request_size`
#: (413) before it joins a batch. `RecordSender` does not check: its records' values are below
#: this, their headers at most aiohttp's 128 request headers' worth, far below the producer's
#: `max_request_size` (1 MiB at least).
_SENDER_MAX_BYTES = 64 * 1024


def default_instance_id() -> str:
    """This process among the gateway replicas: unique per process (hostname and pid)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class TransactionalProducers:
    """A pool of transactional producers, one request's transaction on each at a time.

    Each has its own transactional id (`<client id>-gateway-<instance>-<n>`); starting one fences
    an earlier process that used the same id and aborts what it left open. A process that dies
    with a transaction open leaves it to the broker, which aborts it after `transaction_timeout_s`;
    until then `read_committed` readers of its partitions wait, so keep it short.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        size: int,
        instance_id: str,
        max_request_bytes: int,
        timeout_s: float,
        transaction_timeout_s: float,
    ) -> None:
        self._settings = settings
        self._ids = [f"{settings.client_id}-gateway-{instance_id}-{n}" for n in range(size)]
        self._max_request_bytes = max_request_bytes
        self._timeout_s = timeout_s
        self._transaction_timeout_ms = int(transaction_timeout_s * 1000)
        self._idle: asyncio.Queue[AIOKafkaProducer] = asyncio.Queue()
        self._all: dict[AIOKafkaProducer, str] = {}
        self._starting: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        for transactional_id in self._ids:
            self._replace(transactional_id)

    def _replace(self, transactional_id: str, broken: AIOKafkaProducer | None = None) -> None:
        task = asyncio.create_task(self._open(transactional_id, broken), name=f"kafka-txn-{transactional_id}")
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _open(self, transactional_id: str, broken: AIOKafkaProducer | None) -> None:
        if broken is not None:
            self._all.pop(broken, None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(broken.stop(), self._timeout_s)
        producer = await retry(
            lambda: start_client(
                create_producer(
                    self._settings,
                    max_request_size=self._max_request_bytes,
                    transactional_id=transactional_id,
                    transaction_timeout_ms=self._transaction_timeout_ms,
                )
            ),
            backoff=_CONNECT_BACKOFF,
            retry_on=(KafkaError, OSError),
            message="transactional producer not started, retrying",
        )
        self._all[producer] = transactional_id
        self._idle.put_nowait(producer)

    async def stop(self) -> None:
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        for producer in list(self._all):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self._timeout_s)
        self._all.clear()

    async def publish(self, topic: str, events: Sequence[Event], deadlines: DeadlineWatch) -> None:
        """All of `events` in one transaction, committed; raises (having aborted) otherwise."""
        try:
            producer = await asyncio.wait_for(self._idle.get(), self._timeout_s)
        except TimeoutError:
            raise KafkaError("no transactional producer free in time") from None
        settled = False
        try:
            # All of it within the produce timeout: with Kafka gone, beginning a transaction can
            # wait for ever for a producer id.
            async with asyncio.timeout(self._timeout_s):
                await producer.begin_transaction()
                futures = []
                for event in events:
                    key, value, headers = record_of(event)
                    futures.append(await producer.send(topic, value, key=key, headers=headers))
                await deadlines.wait_all(futures)
                await producer.commit_transaction()
            settled = True
        except BaseException:
            with contextlib.suppress(Exception):
                # Briefly: a producer that cannot abort now is replaced, which fences it.
                await asyncio.wait_for(producer.abort_transaction(), _ABORT_WAIT_S)
                settled = True
            raise
        finally:
            if settled:
                self._idle.put_nowait(producer)
            else:
                # Its transaction is in doubt (Kafka gone mid-way): a new producer with the same
                # transactional id fences it, and the broker aborts what it left open.
                self._replace(self._all[producer], producer)


def record_of(event: Event) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the event's record; with tracing on, the event names the trace
    of the request that brought it (the CloudEvents distributed-tracing extension), unless its
    sender gave it one."""
    key, value, headers = event.to_kafka()
    if (traceparent := current_traceparent()) is not None and "traceparent" not in event.extensions:
        headers.append(("ce_traceparent", traceparent.encode()))
    return key, value, headers


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event this gateway accepted (Kafka acknowledged it)."""

    at: float  # epoch seconds
    source: str


class RecentEvents:
    """The last `capacity` events this gateway accepted, by id: what `GET /events/{id}` answers
    for an event the triggers have not decided yet. Bounded (about 100 bytes an event), and this
    replica's only: an event older than that, or accepted by another replica, is unknown until
    it is decided."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._by_id: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def add(self, events: Sequence[Event], source: str) -> None:
        now = time.time()
        by_id = self._by_id
        for event in events:
            by_id[event.id] = (now, source)  # the source's name is one shared string
        while len(by_id) > self._capacity:
            by_id.popitem(last=False)

    def get(self, event_id: str) -> Accepted | None:
        found = self._by_id.get(event_id)
        return Accepted(*found) if found is not None else None


class EventPublisher:
    """Owns the idempotent producer. Connects in the background, so the gateway starts (and
    answers 503) while Kafka is still down, and reconnects if the producer fails to start."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        timeout_s: float,
        retry_after_s: int,
        metrics: GatewayMetrics,
        max_request_bytes: int = KAFKA_MESSAGE_BYTES,
        transactional_producers: int = 4,
        instance_id: str | None = None,
        transaction_timeout_s: float = 10.0,
    ) -> None:
        self._settings = settings
        self._max_request_bytes = max_request_bytes
        self._topic = settings.events_topic
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._metrics = metrics
        self._producer: AIOKafkaProducer | None = None
        self._sender: RecordSender | None = None
        self._connector: asyncio.Task[None] | None = None
        self._deadlines = DeadlineWatch(timeout_s)
        #: What this gateway accepted lately, so the API can say an event is on its way.
        self.recent = RecentEvents()
        self._transactions = TransactionalProducers(
            settings,
            size=transactional_producers,
            instance_id=instance_id or default_instance_id(),
            max_request_bytes=max_request_bytes,
            timeout_s=timeout_s,
            transaction_timeout_s=max(transaction_timeout_s, timeout_s + 1),
        )

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")
        self._deadlines.start()
        self._transactions.start()

    async def _connect(self) -> None:
        producer = await retry(
            lambda: start_client(create_producer(self._settings, max_request_size=self._max_request_bytes)),
            backoff=_CONNECT_BACKOFF,
            retry_on=(KafkaError, OSError),
            message="kafka not reachable, retrying",
        )
        if not tracing_enabled():  # the aiokafka instrumentation traces send(), which RecordSender skips
            self._sender = RecordSender(producer, self._topic, timeout_s=self._settings.request_timeout_ms / 1000)
        self._producer = producer
        log.info("kafka producer connected", bootstrap_servers=self._settings.bootstrap_servers)

    async def stop(self) -> None:
        """Stop taking events and flush what is in flight."""
        await self._deadlines.stop()
        await self._transactions.stop()
        if self._connector is not None and not self._connector.done():
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        producer, self._producer = self._producer, None
        if producer is not None:
            try:  # stop() flushes, and waits for ever if Kafka is gone
                await asyncio.wait_for(producer.stop(), self._timeout_s)
            except TimeoutError:
                log.warning("kafka producer did not flush in time; unacknowledged events were answered 503")
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    async def ready(self) -> bool:
        """True when the producer is connected and the broker answers metadata now."""
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def publish(self, events: Sequence[Event], *, source: str) -> None:
        """Send every event and wait for all acks; raises `Unavailable` if any is not acked in time."""
        if not events:
            return
        producer = self._producer
        if producer is None:
            raise Unavailable(
                "Kafka is not reachable; retry later", retry_after_s=self._retry_after_s, cause="kafka_unavailable"
            )
        started = time.perf_counter()
        try:
            # send() itself is bounded by request_timeout_ms (metadata, buffer space), but aiokafka
            # retries a dead broker for ever rather than failing the delivery future: the wait for
            # the acks is bounded by the deadline watch.
            if len(events) == 1:
                key, value, headers = record_of(events[0])
                sender = self._sender
                if (
                    sender is not None
                    and len(value) <= _SENDER_MAX_BYTES
                    and (adding := sender.send(key, value, headers)) is not None
                ):
                    future = await adding
                else:
                    future = await producer.send(self._topic, value, key=key, headers=headers)
                await self._deadlines.wait_one(future)
            else:
                await self._transactions.publish(self._topic, events, self._deadlines)
        except MessageSizeTooLargeError as exc:
            # Refused by the producer (over max_request_size) or the broker (message.max.bytes):
            # the same event fails the same way on every retry, so this is not a 503.
            log.info("event too large for kafka", source=source, error=str(exc), events=len(events))
            raise PayloadTooLarge(
                "an event of this request is larger than Kafka accepts; send a smaller body "
                "(the event's data is the body re-serialised, plus its attributes)"
            ) from exc
        except (KafkaError, TimeoutError, OSError) as exc:
            # Nothing of this request is visible to the triggers (one record, or an aborted
            # transaction), and nothing is acknowledged to the client.
            self._metrics.produce_for(source)[2].inc()
            log.warning("produce failed", source=source, error=repr(exc), events=len(events))
            raise Unavailable(
                f"Kafka did not acknowledge the events: {exc.__class__.__name__}",
                retry_after_s=self._retry_after_s,
                cause="kafka_unacked",
            ) from exc
        latency, produced, _ = self._metrics.produce_for(source)
        latency.observe(time.perf_counter() - started)
        produced.inc(len(events))
        self.recent.add(events, source)

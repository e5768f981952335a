"""The triggers service: consume events, start the matching workflows, then commit.

Records are handled concurrently as they arrive (`triggers.concurrency` at a time); a record's
offset is committed only once it has started its workflows or gone to the DLQ, and commits stay
in order per partition (see `triggers.inflight`). A rebalance waits until the revoked
partitions' records are done and committed, so a partition is never handed over half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from temporalio.worker import Worker

from hookline.definitions import DefinitionStore, StoredDefinition
from hookline.dlq import DLQ_DEFINITION, DLQ_OMITTED, replayed_for
from hookline.health import HealthRoutes, serve_health
from hookline.kafka import create_consumer, create_producer, ensure_topics, kafka_answers, start_client
from hookline.lifecycle import stop_on_signals, unless_stopped
from hookline.logging import get_logger
from hookline.matching import Match, TriggerIndex, failure
from hookline.metrics import metrics_handler
from hookline.retry import Backoff, Stopped, retry
from hookline.slots import WorkflowTaskSlots
from hookline.tracing import record_span
from schemas.agents import AgentCatalog
from schemas.decisions import SNAPSHOT_PREFIX, Decision, DecisionRow, Outcome, Snapshot
from schemas.events import Event, EventDecodeError
from triggers.errors import Unprocessable
from triggers.external import event_from_record
from triggers.inflight import InFlight
from triggers.metrics import TriggersMetrics, consumer_lag
from triggers.schedules import Ticker
from triggers.settings import TriggersSettings
from triggers.starter import WorkflowStarter
from triggers.waits import WaitDelivery, WaitIndex

__all__ = ["TriggersService"]

log = get_logger(__name__)
# Commit refusals that mean "the group has rebalanced", not "Kafka is gone".
REBALANCED = (CommitFailedError, IllegalGenerationError, RebalanceInProgressError, UnknownMemberIdError)


def _kafka_unreachable(exc: Exception) -> bool:
    """Kafka's own passing faults: no broker to talk to, no leader (yet), a topic missing from
    the metadata of a broker that has just started, a batch that waited too long for either."""
    return isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and exc.retriable)


# How often offsets of finished records are committed while consuming.
COMMIT_INTERVAL_S = 0.2
#: Between restarts of a schedule ticker that Kafka failed under.
_TICKER_BACKOFF = Backoff(first_s=1.0, max_s=30.0)
#: The stall watchdog's reads, within the 2 s a health check has (hookline/health.py): the
#: consumer's lag, then (when that fails) whether Kafka answers a new client.
_LAG_READ_S = 1.0
_KAFKA_PROBE_S = 0.9


def decisions_producer(settings: TriggersSettings) -> AIOKafkaProducer:
    """The producer of decision and DLQ records: it waits `triggers.decision_linger_ms` to put
    the decisions of concurrent events in one request (the schedule ticker has its own)."""
    return create_producer(settings.kafka, linger_ms=settings.triggers.decision_linger_ms)


class _DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: TriggersService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # A partition is handed over only once its records in flight are done and committed.
        await self._service.hand_over(revoked)
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))


#: Runs the interpreter for a block, on the client given, with its metrics on the registry given:
#: what `triggers.interpreter` needs (the CLI composes it from the worker's settings).
Interpreter = Callable[[Client, CollectorRegistry], AbstractAsyncContextManager[Worker]]


class TriggersService:
    def __init__(
        self,
        settings: TriggersSettings,
        client: Client,
        *,
        agents: AgentCatalog | None = None,
        interpreter: Interpreter | None = None,
        slots: WorkflowTaskSlots | None = None,
    ) -> None:
        """`slots`: the workflow task slots of the interpreter `interpreter` runs, if it runs with
        them (hookline.slots): an eager start waits for one, up to `triggers.slot_wait_s`."""
        self._settings = settings
        self._options = settings.triggers
        if self._options.interpreter and interpreter is None:
            raise ValueError("triggers.interpreter is on, but this process was given no interpreter to run")
        self._host = interpreter if self._options.interpreter else None
        self._client = client
        self._agents = agents if agents is not None else AgentCatalog.load(settings.agents_file)
        self.metrics = TriggersMetrics()
        self.definitions = DefinitionStore(settings.kafka)
        self._stopping = asyncio.Event()
        self._inflight = InFlight(self._options.concurrency)
        self._last_commit = 0.0
        #: When records were last taken or committed, or none were waiting (the stall watchdog).
        self._progress_at = time.monotonic()
        self._starter = WorkflowStarter(
            client,
            settings.temporal,
            self._agents,
            retry_max_s=self._options.start_retry_max_s,
            stopping=self._stopping,
            on_retry=self.metrics.temporal_retries.inc,
            eager=self._options.interpreter,
            on_eager=self.metrics.eager_starts.inc,
            slots=slots,
            slot_wait_s=self._options.slot_wait_s,
        )
        #: The interpreter this process runs (`triggers.interpreter`), once it runs.
        self.interpreter: Worker | None = None
        # The starter's retry while Temporal is unreachable serves the waits' deliveries too.
        self._waits = WaitDelivery(client, settings.temporal, self._starter._retrying)
        self._wait_index: WaitIndex | None = None
        self._consumer: AIOKafkaConsumer | None = None
        #: Writes the DLQ and the decisions.
        self._producer: AIOKafkaProducer | None = None
        self._snapshots: dict[str, asyncio.Future[Any]] = {}
        self._index: TriggerIndex | None = None
        self._index_generation = -1
        self._ticking: asyncio.Task[None] | None = None
        self.consuming = False
        # Read when /metrics is scraped: lag, DLQ size and (where this process runs one) the ticker.
        ticker_problem = self.ticker_problem if self._options.ticker else None
        self.metrics.watch(lambda: self._consumer, settings.kafka, ticker_problem)

    async def run(self) -> None:
        """Consume until `stop()`; then finish the batch in hand, commit, and leave the group.
        With `triggers.interpreter`, the interpreter runs from before the first record to after
        the last start (then shuts down gracefully: a run it hosted goes on in a worker)."""
        if self._host is None:
            return await self._consume()
        async with self._host(self._client, self.metrics.registry) as interpreter:
            self.interpreter = interpreter
            try:
                await self._consume()
            finally:
                self.interpreter = None

    async def _consume(self) -> None:
        kafka = self._settings.kafka
        await ensure_topics(kafka)  # the decisions topic is new to installations made before it
        await self.definitions.start()
        ticker = Ticker(
            kafka,
            self.definitions,
            grace=timedelta(seconds=self._options.schedule_grace_s),
            on_failure=lambda definition: self.metrics.schedule_failures.labels(definition).inc(),
        )
        ticking = asyncio.create_task(self._keep_ticking(ticker), name="ticker") if self._options.ticker else None
        self._ticking = ticking
        self._producer = decisions_producer(self._settings)
        await start_client(self._producer)
        listener = _DrainOnRevoke(self)
        subscribed = self._topics()
        self._consumer = await self._join(subscribed, listener)
        self.consuming = True
        log.info("consuming", topics=subscribed, group=self._options.group_id)
        crashed = False
        try:
            while not self._stopping.is_set():
                if (topics := self._topics()) != subscribed:
                    # A definition named a new topic (or dropped one). Not `subscribe()` on the
                    # running consumer: when its assignment changes during a fetch, aiokafka's
                    # fetch routine can die on an assertion and the consumer then fetches
                    # nothing, for ever (seen in test_kafka_triggers, about one run in four).
                    # What is in flight is finished and committed, this consumer leaves the
                    # group, and a new one joins with the new topics.
                    await self._inflight.drain()
                    self._raise_failure()
                    await self._commit_done()
                    await self._leave()
                    self._consumer = await self._join(topics, listener)
                    subscribed = topics
                    log.info("subscribed", topics=topics)
                await self._consume_some()
            await self._inflight.drain()
            self._raise_failure()
            await self._commit_done()
        except BaseException:
            crashed = True  # like a crash: in-flight work is abandoned and nothing more committed
            self._inflight.cancel()
            raise
        finally:
            if ticking is not None:
                ticker.stop()
                with contextlib.suppress(Exception):
                    await ticking
            self.consuming = False
            if crashed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._inflight.drain(), 5)
            await self._leave()
            await self._producer.stop()
            await self.definitions.stop()

    async def _join(self, topics: list[str], listener: ConsumerRebalanceListener) -> AIOKafkaConsumer:
        consumer = create_consumer(
            self._settings.kafka, group_id=self._options.group_id, max_poll_records=self._options.max_batch
        )
        consumer.subscribe(topics, listener=listener)
        await start_client(consumer)
        return consumer

    async def _leave(self) -> None:
        """Stop the consumer, which leaves the group (its partitions are handed over first)."""
        assert self._consumer is not None
        try:
            await self._consumer.stop()
        except Exception as exc:  # aiokafka re-raises a fetcher error here; the consumer is done either way
            log.warning("the consumer stopped with an error", error=repr(exc))

    async def _consume_some(self) -> None:
        assert self._consumer is not None
        self._raise_failure()
        room = await self._inflight.room(timeout=0.5)
        if room:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=min(room, self._options.max_batch))
            if batches:
                self._progress_at = time.monotonic()
            for records in batches.values():
                self.metrics.events_consumed.inc(len(records))
                for record in records:
                    self._inflight.dispatch(record, self._handle)
        if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
            await self._commit_done()

    def _raise_failure(self) -> None:
        if self._inflight.failure is not None:
            raise self._inflight.failure

    async def _commit_done(self, partitions: set[TopicPartition] | None = None) -> None:
        points = self._inflight.commit_points(partitions)
        self._last_commit = time.monotonic()
        if points:
            try:
                await self._commit(points)
            except REBALANCED as exc:
                # The group moved on while this process was not polling (frozen, or starved): the
                # partitions may be another member's now, and ours are handed over through
                # `hand_over`. Not a crash: their records are delivered again from the last
                # committed offset and start nothing new (run ids are deterministic); points
                # still ours are committed at the next interval, under the new generation.
                log.warning("offsets not committed: the group rebalanced", error=type(exc).__name__)
                return
            self._inflight.committed(points)
            self._progress_at = time.monotonic()

    async def hand_over(self, partitions: set[TopicPartition]) -> None:
        """Finish and commit what is in flight for `partitions` (they are being revoked)."""
        await self._inflight.drain(partitions)
        if self._inflight.failure is None:
            await self._commit_done(partitions)
        self._inflight.forget(partitions)

    def stop(self) -> None:
        self._stopping.set()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        await self._consumer.commit(offsets)

    def _topics(self) -> list[str]:
        """The events topic and every topic a `kafka` trigger or a `wait_for` step names."""
        external = {
            t.topic for d in self.definitions.all() for t in d.definition.triggers if t.type == "kafka" and t.topic
        }
        return sorted({self._settings.kafka.events_topic} | external | self._waiting().topics())

    def _matcher(self) -> TriggerIndex:
        if self._index is None or self._index_generation != self.definitions.generation:
            self._index_generation = self.definitions.generation
            self._index = TriggerIndex(self.definitions.all())
            self._wait_index = WaitIndex(self.definitions.all())
        return self._index

    def _waiting(self) -> WaitIndex:
        """The `wait_for` steps of the definitions in force (built with the matcher)."""
        self._matcher()
        assert self._wait_index is not None
        return self._wait_index

    async def _handle(self, record: ConsumerRecord[Any, Any]) -> None:
        """`_decide` in the trace the record carries (hookline.tracing; nothing when off)."""
        with record_span("hookline.triggers.decide", record.headers or (), topic=record.topic, offset=record.offset):
            await self._decide(record)

    async def _decide(self, record: ConsumerRecord[Any, Any]) -> None:
        """Start what `record` matches, then record the decision. A fault of the record (it does
        not decode, or cannot be matched) dead-letters the record; a fault of one definition (its
        filter, its input, its start) dead-letters the record for that definition alone, and the
        others still start. Only faults of Kafka and Temporal themselves end the service."""
        consumed_at = datetime.now(UTC)
        try:
            if record.topic == self._settings.kafka.events_topic:
                event = Event.from_kafka(record.value, record.headers)
            else:
                event = event_from_record(record)
        except Exception as exc:  # any record, however made, is the record's fault
            why = str(exc) if isinstance(exc, EventDecodeError) else failure(exc)
            await self._dead_letter(record, f"undecodable event: {why}")
            return
        matcher = self._matcher()
        try:
            matches = matcher.matches(event)
        except Exception as exc:  # e.g. data no serialiser can walk
            await self._dead_letter(record, f"the event cannot be matched: {failure(exc)}")
            return
        only = replayed_for(record)
        bound = log.bind(event_id=event.id, dedupe_key=event.dedupekey)
        rows: list[DecisionRow] = []
        for match in matches:
            if only is not None and match.stored.id not in only:
                continue  # a replay concerns the definitions it was dead-lettered for, no other
            row = self._failed(match.stored, match.error) if match.error else await self._deliver(event, match, bound)
            if row.reason is not None:
                await self._dead_letter(record, row.reason, match.stored)
            rows.append(row)
        rows += await self._bring_to_waiters(record, event, only, {row.definition_id for row in rows}, bound)
        await self._decided(record, event, matcher, rows, consumed_at, replay=only is not None)

    async def _bring_to_waiters(
        self,
        record: ConsumerRecord[Any, Any],
        event: Event,
        only: set[str] | None,
        decided: set[str],
        bound: Any,
    ) -> list[DecisionRow]:
        """Bring `event` to the mailboxes of the `wait_for` steps it is for (triggers/waits.py).
        A delivery that can never succeed dead-letters the record for that definition alone;
        the decision gets its row if the definition has none yet."""
        rows: list[DecisionRow] = []
        accepted_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        for spec, context in self._waiting().waiting_for(event):
            stored = spec.stored
            if only is not None and stored.id not in only:
                continue
            try:
                box = await self._waits.deliver(event, accepted_at, spec, context)
            except Unprocessable as exc:
                await self._dead_letter(record, str(exc), stored)
                if stored.id not in decided:
                    decided.add(stored.id)
                    rows.append(self._failed(stored, str(exc)))
                continue
            bound.info("brought to waiters", definition=stored.id, step=spec.step, mailbox=box)
        return rows

    @staticmethod
    def _failed(stored: StoredDefinition, reason: str) -> DecisionRow:
        return DecisionRow(
            definition_id=stored.id,
            version=stored.version,
            team=stored.definition.team,
            outcome="dead-lettered",
            reason=reason,
        )

    async def _deliver(self, event: Event, match: Match, bound: Any) -> DecisionRow:
        """Start (or signal) the run of one matched definition: what came of it."""
        stored = match.stored
        started_at = time.perf_counter()
        outcome: Outcome
        try:
            if event.resolves:
                workflow_id, outcome = await self._starter.resolve(event, stored, match.trigger)
            elif match.trigger.flow_controlled:
                workflow_id, outcome = await self._starter.enqueue(event, stored, match.trigger)
            else:
                workflow_id, started = await self._starter.start(event, stored, match.trigger)
                outcome = "started" if started else "existing"
        except Unprocessable as exc:
            return self._failed(stored, str(exc))
        except Exception as exc:  # Hookline's own per-record code, not infrastructure
            bound.exception("starting failed unexpectedly", definition=stored.id, version=stored.version)
            return self._failed(stored, f"definition {stored.id} v{stored.version}: unexpected {failure(exc)}")
        self.metrics.start_latency.observe(time.perf_counter() - started_at)
        self.metrics.workflows_started.labels(stored.id, outcome).inc()
        bound.info(f"workflow {outcome}", workflow_id=workflow_id, definition=stored.id, version=stored.version)
        return DecisionRow(
            definition_id=stored.id,
            version=stored.version,
            team=stored.definition.team,
            outcome=outcome,
            workflow_id=workflow_id or None,
        )

    async def _decided(
        self,
        record: ConsumerRecord[Any, Any],
        event: Event,
        matcher: TriggerIndex,
        rows: list[DecisionRow],
        consumed_at: datetime,
        *,
        replay: bool,
    ) -> None:
        """Write the decision (`schemas.decisions`) before the record's offset may be committed."""
        assert self._producer is not None
        began = time.perf_counter()
        kafka = self._settings.kafka
        snapshot = await self._snapshot(matcher)
        if record.topic == kafka.events_topic:
            value, headers = record.value, list(record.headers or ())
        else:  # an external record: the event it became, in the events topic's form
            _, value, headers = event.to_kafka()

        def encoded(omit_data: bool) -> bytes:
            return Decision.encode(
                event,
                value,
                headers,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                accepted_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
                consumed_at=consumed_at,
                decided_at=datetime.now(UTC),
                teams=matcher.teams(event),
                snapshot=snapshot,
                matched=rows,
                replay=replay,
                omit_data=omit_data,
            )

        key = event.id.encode()
        try:
            await self._write(kafka.decisions_topic, encoded(omit_data=False), key=key)
        except MessageSizeTooLargeError:
            # The event's data is nearly as large as Kafka takes (a `kafka` trigger's topic may
            # hold records of 1 MiB): the decision goes without it (it stays in the record).
            log.warning(
                "decision recorded without the event's data: too large", event_id=event.id, bytes=len(value or b"")
            )
            await self._write(kafka.decisions_topic, encoded(omit_data=True), key=key)
        self.metrics.decision_latency.observe(time.perf_counter() - began)

    async def _snapshot(self, matcher: TriggerIndex) -> str:
        """The id of the matcher's definition versions, written to the decisions topic once
        (every decision naming it waits for that write)."""
        assert self._producer is not None
        identity = matcher.snapshot
        written = self._snapshots.get(identity)
        if written is None:
            value = Snapshot(id=identity, versions=matcher.versions).model_dump_json().encode()
            key = (SNAPSHOT_PREFIX + identity).encode()
            written = self._snapshots[identity] = asyncio.ensure_future(
                self._write(self._settings.kafka.decisions_topic, value, key=key)
            )
        try:
            await asyncio.shield(written)
        except Exception:
            self._snapshots.pop(identity, None)  # written again by the next decision naming it
            raise
        return identity

    async def _write(
        self, topic: str, value: bytes | None, *, key: bytes | None, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        """Send one record and wait until Kafka has it. While Kafka is unreachable (a broker
        restarting, a partition without a leader) the write is retried for `kafka_retry_s`; the
        record it is for stays uncommitted meanwhile. Then the failure ends the service."""
        producer = self._producer
        assert producer is not None
        await retry(
            lambda: producer.send_and_wait(topic, value, key=key, headers=headers),
            backoff=Backoff(first_s=0.2, max_s=5.0, jitter=0.2),
            retry_on=_kafka_unreachable,
            within_s=self._options.kafka_retry_s,
            message="kafka unavailable, retrying",
            stopping=self._stopping,
            on_retry=self.metrics.kafka_retries.inc,
            topic=topic,
        )

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], reason: str, definition: StoredDefinition | None = None
    ) -> None:
        """Put `record` on the DLQ with `reason`; with `definition`, the record concerns that
        definition only (the others it matched were started), and a replay starts it alone."""
        assert self._producer is not None
        headers = [
            *list(record.headers or ()),
            ("hookline_dlq_reason", reason.encode(errors="replace")),
            ("hookline_dlq_topic", record.topic.encode()),
            ("hookline_dlq_partition", str(record.partition).encode()),
            ("hookline_dlq_offset", str(record.offset).encode()),
        ]
        if definition is not None:
            headers += [
                (DLQ_DEFINITION, definition.id.encode()),
                ("hookline_dlq_version", str(definition.version).encode()),
            ]
        try:
            await self._write(self._settings.kafka.dlq_topic, record.value, key=record.key, headers=headers)
        except MessageSizeTooLargeError:
            # The record with the DLQ's headers is more than Kafka takes. The DLQ keeps where it
            # was read instead, and a replay reads it from there (hookline/dlq.py).
            # Its small headers stay (the CloudEvents id, source and type the DLQ lists).
            original = list(record.headers or ())
            size = len(record.value or b"") + len(record.key or b"") + sum(len(v or b"") for _, v in original)
            small = [(k, v) for k, v in original if v is not None and len(k) + len(v) <= 256][:64]
            kept = [*small, *headers[len(original) :], (DLQ_OMITTED, str(size).encode())]
            key = record.key if record.key and len(record.key) <= 1024 else b""  # Kafka needs a key or a value
            await self._write(self._settings.kafka.dlq_topic, None, key=key, headers=kept)
        self.metrics.dead_lettered.inc()
        log.warning(
            "dead-lettered",
            reason=reason,
            definition=definition.id if definition else None,
            partition=record.partition,
            offset=record.offset,
        )

    async def _keep_ticking(self, ticker: Ticker) -> None:
        """Run the ticker; when Kafka fails under it, start it again (with backoff) until stopped."""
        # Its Kafka producer or state reader fails; a schedule's own fault never gets here.
        with contextlib.suppress(Stopped):
            await retry(
                ticker.run,
                backoff=_TICKER_BACKOFF,
                retry_on=Exception,
                message="schedule ticker failed; restarting it",
                stopping=self._stopping,
                level=logging.ERROR,
            )

    async def stall_problem(self) -> str | None:
        """Liveness: records wait on the assigned partitions, none is being handled, and none was
        taken or committed for `triggers.stall_s` (a wedged consumer: the cure is a new process).
        Nothing waiting is progress too. Not a stall: records being handled (Temporal may be
        away, and they wait for it), or Kafka not answering anyone (a restart would not bring it
        back). A consumer that cannot read its lag while Kafka answers a new client is wedged:
        its client waits for an answer that never comes (aio-libs/aiokafka#1038 did that)."""
        stalled_s = time.monotonic() - self._progress_at
        if stalled_s < self._options.stall_s or not self.consuming or self._stopping.is_set():
            return None
        if len(self._inflight):
            self._progress_at = time.monotonic()
            return None
        try:
            async with asyncio.timeout(_LAG_READ_S):
                waiting = sum((await consumer_lag(self._consumer)).values())
        except Exception:
            if await kafka_answers(self._settings.kafka.bootstrap_servers, _KAFKA_PROBE_S):
                return (
                    "the consumer gets no answer from Kafka, which answers a new client; "
                    f"nothing taken or committed for {stalled_s:.0f}s"
                )
            return None
        if waiting == 0:
            self._progress_at = time.monotonic()
            return None
        return f"{waiting} records wait and none was taken or committed for {stalled_s:.0f}s"

    async def ticker_problem(self) -> str | None:
        """Liveness: the ticker, if this process runs one, has not died (Kafka failing under it
        restarts it; a dead ticker is a bug, and a restart of the process is the cure)."""
        if self._ticking is not None and self._ticking.done() and not self._stopping.is_set():
            failure = None if self._ticking.cancelled() else self._ticking.exception()
            return f"the schedule ticker stopped: {type(failure).__name__ if failure else 'cancelled'}"
        return None


def status_app(service: Callable[[], TriggersService | None]) -> web.Application:
    """/healthz, /readyz and /metrics of the process; `service` is None until Temporal answers."""

    async def ticker() -> str | None:
        current = service()
        return await current.ticker_problem() if current is not None else None

    async def stalled() -> str | None:
        current = service()
        return await current.stall_problem() if current is not None else None

    async def consuming() -> str | None:
        current = service()
        if current is None:
            return "connecting to Temporal"
        return None if current.consuming else "not consuming"

    async def interpreter() -> str | None:
        current = service()
        worker = current.interpreter if current is not None else None
        return "the interpreter stopped" if worker is not None and not worker.is_running else None

    def registry() -> CollectorRegistry | None:
        current = service()
        return current.metrics.registry if current is not None else None

    app = web.Application()
    HealthRoutes.of(
        live={"ticker": ticker, "progress": stalled, "interpreter": interpreter}, ready={"consumer": consuming}
    ).add_to(app)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


async def serve(
    settings: TriggersSettings,
    connect: Callable[[], Awaitable[Client]],
    *,
    agents: AgentCatalog | None = None,
    interpreter: Interpreter | None = None,
    slots: WorkflowTaskSlots | None = None,
) -> None:
    """Run the service and its status endpoint until SIGTERM/SIGINT (`interpreter` and `slots`:
    `TriggersService`'s).

    The signal handlers come first, so a SIGTERM while Temporal is still being reached ends the
    process cleanly too.
    """
    stop = stop_on_signals()
    service: TriggersService | None = None
    options = settings.triggers
    async with serve_health(status_app(lambda: service), options.host, options.port):
        client = await unless_stopped(connect(), stop)
        if client is None:
            return
        running = service = TriggersService(settings, client, agents=agents, interpreter=interpreter, slots=slots)
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: running.stop())
        try:
            await running.run()
        finally:
            stopping.cancel()

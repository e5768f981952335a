"""Kafka connection helpers: the one place producers, consumers and topics are configured."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord
from murmurhash2 import murmurhash2

from hookline.lifecycle import cancel_and_wait
from hookline.logging import get_logger
from hookline.retry import Backoff, retry
from hookline.settings import KafkaSettings
from hookline.topics import replication

__all__ = [
    "TopicView",
    "assign_from_beginning",
    "assign_to_follow",
    "create_consumer",
    "create_producer",
    "ensure_topics",
    "kafka_answers",
    "murmur2",
    "partition_of",
    "read_record",
    "read_to_end",
    "read_topic",
    "start_client",
    "topic_partitions",
    "wait_for_kafka",
]

log = get_logger(__name__)
#: How often a broker starting up is asked again whether it answers.
_POLL = Backoff(first_s=0.25, max_s=0.25)
#: How often a topic just created is looked at again until its partitions have leaders.
_LEADER_POLL = Backoff(first_s=0.1, max_s=0.1)
#: The pause before a followed topic is read again after a failed read.
_REREAD = Backoff(first_s=1.0, max_s=1.0)
#: How long a client's start whose caller was cancelled may go on, so that it can be stopped whole.
_START_GRACE_S = 10.0


def _closed_socket_breaks_the_connection(send: Callable[..., Any]) -> Callable[..., Any]:
    """`AIOKafkaConnection.send`, where a write to a socket the broker closed breaks the
    connection as aiokafka expects (`KafkaConnectionError`) on uvloop too.

    aiokafka catches `OSError` around its write; uvloop raises `RuntimeError` ("the handler is
    closed") when the socket was closed in the same turn of the loop and aiokafka has not seen it
    yet (aio-libs/aiokafka#1038, open). Raised in the task that keeps a client's metadata, that
    error ended the task, and every wait for metadata after it (a commit, a coordinator lookup)
    waited for ever: a broker's restart wedged the triggers' consumer for good, about one time
    in five (the short drill). Any other `RuntimeError` goes on unchanged."""
    if getattr(send, "_hookline_mended", False):
        return send

    @functools.wraps(send)
    def mended(self: AIOKafkaConnection, *args: Any, **kwargs: Any) -> Any:
        try:
            return send(self, *args, **kwargs)
        except RuntimeError as exc:
            writer = self._writer
            if writer is None or not writer.transport.is_closing():
                raise
            self.close(reason=CloseReason.CONNECTION_BROKEN, exc=exc)
            raise KafkaConnectionError(f"Connection at {self.host}:{self.port} broken: {exc}") from exc

    mended._hookline_mended = True  # type: ignore[attr-defined]
    return mended


AIOKafkaConnection.send = _closed_socket_breaks_the_connection(AIOKafkaConnection.send)

Client: TypeAlias = "AIOKafkaProducer[Any, Any] | AIOKafkaConsumer[Any, Any] | AIOKafkaAdminClient"
C = TypeVar("C", AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)


async def start_client(client: C) -> C:
    """`client`, started; stopped again if the start fails or its caller is cancelled meanwhile.

    aiokafka closes the connection a start bootstraps from only on the errors it expects: a start
    cancelled while it waits for the first metadata leaves that connection open for ever (found
    as an "Unclosed AIOKafkaConnection" warning when it is collected). So a cancelled caller lets
    the start run to its end first (at most `_START_GRACE_S`), then stops the client, and is then
    cancelled as it asked."""
    start = asyncio.ensure_future(client.start())
    try:
        await asyncio.shield(start)
    except asyncio.CancelledError:
        await asyncio.wait({start}, timeout=_START_GRACE_S)
        if not start.done():
            start.cancel()
        elif not start.cancelled():
            start.exception()  # retrieved: it is the cancellation that goes on
        await _stop_client(client)
        raise
    except BaseException:
        await _stop_client(client)
        raise
    return client


async def _stop_client(client: Client) -> None:
    try:
        await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
    except Exception as exc:  # it did not start: there may be nothing to stop
        log.debug("kafka client not stopped cleanly", error=str(exc) or type(exc).__name__)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` (the Java client's `Utils.murmur2`, with its seed), unsigned: the
    value aiokafka's pure-Python `murmur2` gives (a few hundred bytecodes a key, the costliest
    function of a send), computed by compiled code. (Not a `functools.partial`: its keyword
    argument cost more than this call.)"""
    return murmurhash2(data, 0x9747B28C)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition of a keyed record in a topic of `partitions` partitions, as every Kafka
    producer (aiokafka's default partitioner, the Java client's) chooses it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


_random_partition = DefaultPartitioner()


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's (and the Java client's) default partitioner, with the faster `murmur2`: a key
    lands on the partition any other Kafka producer would put it on."""
    if key is None:
        return _random_partition(key, all_partitions, available)  # type: ignore[no-any-return]
    return all_partitions[partition_of(key, len(all_partitions))]


def create_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """A durable producer: acks=all and idempotence, so a 2xx means the event is on disk. Keys
    are partitioned as every Kafka client does, by `key_partitioner`."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.linger_ms,
        "request_timeout_ms": settings.request_timeout_ms,
        "max_batch_size": 256 * 1024,
        "partitioner": key_partitioner,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(settings: KafkaSettings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that never commits on its own: offsets are committed after the work is done."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create Hookline's topics if they are missing (events, DLQ, decisions, compacted definitions and
    schedules), replicated as `hookline.topics.replication` says for the brokers the cluster has now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id=settings.client_id)
    await start_client(admin)
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        copies = replication(brokers)
        replicated = {"min.insync.replicas": str(copies.min_insync)}

        def topic(name: str, partitions: int = 1, configs: Mapping[str, str] | None = None) -> NewTopic:
            return NewTopic(name, partitions, copies.factor, topic_configs={**replicated, **(configs or {})})

        wanted = [
            topic(settings.events_topic, settings.events_partitions),
            topic(settings.dlq_topic),
            topic(settings.workflows_topic, 1, {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}),
            # The last slot each schedule ticked, so a restarted ticker knows what it missed.
            topic(settings.schedules_topic, 1, {"cleanup.policy": "compact"}),
            # Who did what through the API (gateway/api/audit.py), kept for a long while.
            topic(settings.audit_topic, 1, {"retention.ms": str(int(settings.audit_retention_days * 86_400_000))}),
            # What the triggers decided for each event (schemas.decisions), kept for a while.
            topic(settings.decisions_topic, 1, {"retention.ms": str(int(settings.decisions_retention_h * 3_600_000))}),
        ]
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created it meanwhile
            await _until_led(admin, [t.name for t in missing])
    finally:
        await admin.close()


class _Leaderless(Exception):
    """A partition of a topic just created has no leader yet."""


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float = 15.0) -> None:
    """Wait until every partition of `topics` has a leader: a topic just created is not in every
    broker's metadata at once, and a reader started right after would find it missing."""

    async def led() -> None:
        described = await admin.describe_topics(topics)
        led = [
            t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ]
        if len(led) != len(topics) or not all(led):
            raise _Leaderless(", ".join(topics))

    try:
        await retry(
            led,
            backoff=_LEADER_POLL,
            retry_on=_Leaderless,
            within_s=timeout_s,
            message="topics without leaders yet",
            level=logging.DEBUG,
        )
    except _Leaderless:
        raise KafkaError(f"topics {', '.join(topics)} created but without leaders after {timeout_s:g}s") from None


async def _answers(bootstrap_servers: str) -> None:
    """The broker answers a metadata request, over connections of its own."""
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    # A plain TCP probe first keeps the client from logging every refused attempt.
    _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    await start_client(admin)
    try:
        await admin.list_topics()
    finally:
        await admin.close()


async def wait_for_kafka(bootstrap_servers: str, timeout: float = 60.0) -> None:
    """Wait until the broker answers a metadata request; raises TimeoutError after `timeout`."""
    try:
        await retry(
            lambda: _answers(bootstrap_servers),
            backoff=_POLL,
            retry_on=(KafkaError, OSError),
            within_s=timeout,
            message="kafka not answering yet",
            level=logging.DEBUG,
        )
    except (KafkaError, OSError) as exc:
        raise TimeoutError(f"Kafka at {bootstrap_servers} did not answer within {timeout:.0f}s: {exc}") from exc


async def kafka_answers(bootstrap_servers: str, timeout_s: float) -> bool:
    """Whether the broker answers a new client within `timeout_s` (one try): tells a Kafka that is
    away from a client of this process that no longer gets answers from it. Returns by
    `timeout_s` even when the broker takes connections and answers nothing (frozen): the probe is
    not cancelled then (a client's start, cancelled, finishes first to close its connection), it
    ends on its own within the client's request timeout."""
    probe = asyncio.ensure_future(_answers(bootstrap_servers))
    done, _ = await asyncio.wait({probe}, timeout=timeout_s)
    if not done:
        probe.add_done_callback(_retrieve)
        return False
    failure = probe.exception()
    if failure is None:
        return True
    if isinstance(failure, KafkaError | OSError | TimeoutError):
        return False
    raise failure


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Take a background task's outcome, so that its failure is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of `topic` (refreshing metadata first); empty if the topic does not exist."""
    # An unassigned consumer keeps no metadata for the topic, and aiokafka (0.14) has no public
    # call that refreshes it: `topics()` fetches the cluster's metadata but returns only names,
    # `partitions_for_topic()` reads the cached view. Its client is the one way to fresh partitions.
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]


async def assign_from_beginning(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """Assign every partition of `topic` to `consumer`, each at its first record; returns the end
    of each as it was just before (none, and nothing assigned, if the topic does not exist)."""
    tps = await topic_partitions(consumer, topic)
    if not tps:
        return {}
    # Asked before the assignment: an assigned consumer long-polls its partitions, and the broker
    # answers the next request on that connection only once the poll returns (after up to
    # fetch_max_wait_ms, 500 ms, on a partition with nothing new).
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return ends


async def assign_to_follow(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """`assign_from_beginning` for a reader that cannot work without `topic`: the end of each
    partition now (what there is to read before it is caught up); RuntimeError if the topic does
    not exist."""
    ends = await assign_from_beginning(consumer, topic)
    if not ends:
        raise RuntimeError(f"topic {topic} does not exist; run `hookline init` or create the topics")
    return ends


async def read_to_end(
    consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int] | None = None
) -> AsyncGenerator[ConsumerRecord[bytes, bytes]]:
    """The records of the consumer's assignment from where it is up to each partition's end as
    it is now, in order per partition. Records written meanwhile are not read: the consumer is
    left at those ends, where a later read finds them. `ends`: those ends, if the caller has
    them (`assign_from_beginning`'s); asked of the consumer otherwise, whose answer waits for
    its pending poll."""
    if ends is None:
        ends = await consumer.end_offsets(list(consumer.assignment()))
    ends = {tp: end for tp, end in ends.items() if end > 0}
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        for tp, records in (await consumer.getmany(*ends, timeout_ms=500)).items():
            for record in records:
                if record.offset < ends[tp]:
                    yield record
            if records and records[-1].offset >= ends[tp]:
                consumer.seek(tp, ends[tp])  # fetched past the end: left for a later read


async def read_topic(settings: KafkaSettings, topic: str) -> AsyncGenerator[ConsumerRecord[bytes, bytes]]:
    """The records of `topic` from its beginning to its end as it is now (`read_to_end`), through
    a consumer of their own; none if the topic does not exist. Close it (`contextlib.aclosing`)
    if you may stop reading early, so its consumer stops at once."""
    consumer = create_consumer(settings, group_id=None)
    await start_client(consumer)  # stopped if it does not start
    try:
        ends = await assign_from_beginning(consumer, topic)
        async for record in read_to_end(consumer, ends):
            yield record
    finally:
        await consumer.stop()


async def read_record(
    settings: KafkaSettings, tp: TopicPartition, offset: int, timeout_s: float = 10.0
) -> ConsumerRecord[bytes, bytes] | None:
    """The record at `offset` of `tp`, through a consumer of its own; None if the partition does
    not hold it (any more: retention deleted it; or at all: no such topic, partition or offset)."""
    consumer = create_consumer(settings, group_id=None)
    await start_client(consumer)
    try:
        if tp not in await topic_partitions(consumer, tp.topic):
            return None
        first, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return None
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            for record in (await consumer.getmany(tp, timeout_ms=500, max_records=1)).get(tp, []):
                # Past it: the offset was a transaction's marker or an aborted record.
                return record if record.offset == offset else None
        return None
    finally:
        await consumer.stop()


class TopicView:
    """The latest value of every key of a compacted topic: read from the beginning by `start`,
    then followed in the background until `stop`. A topic that does not exist yet is looked for
    again every few seconds."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._values: dict[str, bytes] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._follow: asyncio.Task[None] | None = None

    def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    def values(self) -> list[bytes]:
        """Every key's value, in the order the keys were first written."""
        return list(self._values.values())

    async def start(self) -> None:
        consumer = self._consumer = create_consumer(self._settings, group_id=None)
        await start_client(consumer)
        if ends := await assign_from_beginning(consumer, self._topic):
            async for record in read_to_end(consumer, ends):
                self._apply(record)
        self._follow = asyncio.create_task(self._run(consumer), name=f"follow-{self._topic}")

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key is None:
            return
        if record.value is None:
            self._values.pop(record.key.decode(errors="replace"), None)
        else:
            self._values[record.key.decode(errors="replace")] = record.value

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:  # the consumer reconnects by itself: a failed read is tried again
            await retry(
                lambda: self._read_new(consumer),
                backoff=_REREAD,
                retry_on=KafkaError,
                message="following a topic failed, retrying",
                topic=self._topic,
            )

    async def _read_new(self, consumer: AIOKafkaConsumer) -> None:
        """Apply what is new; a topic that does not exist yet is looked for again after a pause."""
        if not consumer.assignment() and not await assign_from_beginning(consumer, self._topic):
            await asyncio.sleep(5)
            return
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            for record in records:
                self._apply(record)

    async def stop(self) -> None:
        await cancel_and_wait(self._follow)
        if self._consumer is not None:
            await self._consumer.stop()

"""aiokafka on uvloop, where the components run: a connection the broker closed breaks cleanly.

aiokafka expects an `OSError` when it writes to a connection that is gone; uvloop raises a
`RuntimeError` ("the handler is closed") instead (aio-libs/aiokafka#1038, open). The task that
keeps a client's metadata died of it when a broker restarted, and every later wait for metadata
(a consumer's commit, its coordinator lookup) then waited for ever: the triggers consumed nothing
more and logged nothing (found in the short drill, kafka-kill-mid, about one round in five).
`hookline.kafka` makes that error the `KafkaConnectionError` aiokafka handles.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop
from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from hookline.kafka import kafka_answers  # importing hookline.kafka mends aiokafka's connections
from hookline.stack import free_port
from tests.conftest import LocalStack, SharedStack

pytestmark = pytest.mark.integration


async def _a_client(bootstrap_servers: str) -> tuple[AIOKafkaClient, int]:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    await client.bootstrap()
    node_id = next(iter(client.cluster.brokers())).nodeId
    assert await client.ready(node_id)
    return client, node_id


async def _closed_under(client: AIOKafkaClient, node_id: int) -> AIOKafkaConnection:
    """The client's connection to `node_id`, its socket closed as when the broker went away, in
    the turn of the loop before aiokafka's reader sees it: uvloop's handle is closed already,
    and aiokafka still holds the connection as open."""
    conn = client._conns[(node_id, ConnectionGroup.DEFAULT)]
    transport = conn._writer.transport
    transport.abort()
    await asyncio.sleep(0)
    assert "closed=True" in repr(transport), transport  # uvloop's own state
    assert conn._writer is not None  # aiokafka's reader has not closed it yet
    return conn


def test_a_write_to_a_closed_socket_is_a_connection_error(stack: LocalStack | SharedStack) -> None:
    async def scenario() -> None:
        client, node_id = await _a_client(stack.kafka.bootstrap_servers)
        try:
            conn = await _closed_under(client, node_id)
            with pytest.raises(KafkaConnectionError, match="broken"):
                await conn.send(MetadataRequest([]))
            assert not conn.connected()
            # The client connects again and gets its metadata.
            assert await asyncio.wait_for(client.force_metadata_update(), 10)
            assert not client._sync_task.done()
        finally:
            await client.close()

    uvloop.run(scenario())


def test_other_runtime_errors_are_not_taken_for_a_broken_connection(stack: LocalStack | SharedStack) -> None:
    async def scenario() -> None:
        client, node_id = await _a_client(stack.kafka.bootstrap_servers)
        try:
            conn = client._conns[(node_id, ConnectionGroup.DEFAULT)]

            class Unencodable(MetadataRequest):  # type: ignore[misc]
                def prepare(self, versions: Any) -> Any:
                    raise RuntimeError("not a socket's fault")

            with pytest.raises(RuntimeError, match="not a socket's fault"):
                await conn.send(Unencodable([]))
            assert conn.connected()
        finally:
            await client.close()

    uvloop.run(scenario())


async def test_kafka_answers_tells_a_broker_that_answers_from_one_that_is_away(
    stack: LocalStack | SharedStack,
) -> None:
    """The probe the triggers' stall watchdog asks when its consumer gets no answer."""
    assert await kafka_answers(stack.kafka.bootstrap_servers, 5.0)
    assert not await kafka_answers(f"127.0.0.1:{free_port()}", 5.0)  # nothing listens there

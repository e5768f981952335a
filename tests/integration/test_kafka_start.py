"""A Kafka client whose start is cancelled midway (a component stopping while it connects) is
stopped whole: aiokafka itself leaves the connection it bootstraps from open when its start is
cancelled while it waits for the first metadata (of 100 starts cancelled at moments spread over
their first 5 ms, 22 and 36 left one open in two runs without `start_client`), which
`start_client` prevents."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator

import pytest

from hookline.kafka import create_consumer, create_producer, start_client
from hookline.settings import KafkaSettings


@pytest.fixture
def unraisable() -> Iterator[list[str]]:
    """What the garbage collector could not finish cleanly (an unclosed connection's warning)."""
    found: list[str] = []
    previous, sys.unraisablehook = sys.unraisablehook, lambda u: found.append(repr(u.exc_value))
    try:
        yield found
    finally:
        sys.unraisablehook = previous


async def test_a_start_cancelled_at_any_moment_leaves_no_connection_open(
    kafka_settings: KafkaSettings, unraisable: list[str]
) -> None:
    cancelled = attempt = 0
    while cancelled < 60 and attempt < 400:  # 60 starts cancelled, at moments spread over 5 ms
        client = create_producer(kafka_settings) if attempt % 2 else create_consumer(kafka_settings, group_id=None)
        starting = asyncio.ensure_future(start_client(client))
        await asyncio.sleep(attempt % 100 * 0.00005)  # from at once to 5 ms in: every stage of a start
        if starting.done():
            await starting
            await client.stop()
        else:
            starting.cancel()
            cancelled += 1
            with pytest.raises(asyncio.CancelledError):
                await starting
        del client, starting
        attempt += 1
    gc.collect()
    assert cancelled == 60, f"only {cancelled} of {attempt} starts were cancelled while they started"
    assert unraisable == []

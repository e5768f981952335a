"""`kafka_answers`, the triggers' stall watchdog's probe, answers within its time: also when the
broker takes connections and answers nothing (frozen), where a cancelled client start would first
wait up to 10 s to close its connection."""

from __future__ import annotations

import asyncio
import time

from hookline.kafka import kafka_answers


async def test_a_broker_that_takes_connections_and_answers_nothing_is_not_answering() -> None:
    held: list[asyncio.StreamWriter] = []

    async def take(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never a byte back, as a SIGSTOPped broker

    server = await asyncio.start_server(take, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        assert not await kafka_answers(f"127.0.0.1:{port}", 0.5)
        assert time.monotonic() - started < 1.5  # inside the health check's 2 s
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_nothing_listening_is_not_answering() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    assert not await kafka_answers(f"127.0.0.1:{port}", 0.5)

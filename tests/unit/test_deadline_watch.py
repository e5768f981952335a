"""The single-timer deadline that bounds the gateway's wait for Kafka's acks (pure asyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import KafkaError

from gateway.publisher import DeadlineWatch


@pytest.fixture
async def watch() -> AsyncIterator[DeadlineWatch]:
    w = DeadlineWatch(timeout_s=0.3, tick_s=0.02)
    w.start()
    yield w
    await w.stop()


async def test_returns_when_every_future_succeeded(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    for i, f in enumerate(futures):
        loop.call_later(0.01 * i, f.set_result, i)
    await asyncio.wait_for(watch.wait_all(futures), 1)


async def test_first_failure_is_raised(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    ok, bad = loop.create_future(), loop.create_future()
    ok.set_result(1)
    loop.call_soon(bad.set_exception, KafkaError("broker said no"))
    with pytest.raises(KafkaError, match="broker said no"):
        await watch.wait_all([ok, bad])


async def test_unanswered_futures_time_out_at_the_deadline(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await watch.wait_all([loop.create_future()])
    assert 0.3 <= loop.time() - started < 1.0


async def test_a_wait_fails_within_two_ticks_after_its_deadline(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.013)  # somewhere inside a tick
    started = loop.time()
    with pytest.raises(TimeoutError):
        await watch.wait_one(loop.create_future())
    # 0.3 s, plus up to two ticks of 0.02 s, plus a margin for a busy test machine.
    assert 0.3 <= loop.time() - started <= 0.3 + 2 * 0.02 + 0.15


async def test_settled_futures_are_not_kept_once_their_tick_closes(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    done, pending = loop.create_future(), loop.create_future()
    waits = [asyncio.ensure_future(watch.wait_one(f)) for f in (done, pending)]
    await asyncio.sleep(0)
    done.set_result("acked")
    await asyncio.sleep(0.06)  # past a tick: the bucket closed
    kept = [f for _, bucket in watch._closed for f in bucket]
    assert kept == [pending]
    pending.set_result("acked")
    await asyncio.wait_for(asyncio.gather(*waits), 1)


async def test_later_waiters_are_not_expired_early(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    first = asyncio.ensure_future(watch.wait_all([loop.create_future()]))
    await asyncio.sleep(0.2)
    late = loop.create_future()
    second = asyncio.ensure_future(watch.wait_all([late]))
    with pytest.raises(TimeoutError):
        await first
    assert not second.done()
    late.set_result(None)
    await asyncio.wait_for(second, 1)


# wait_one: the single-record path, which awaits aiokafka's own delivery future.


async def test_one_future_returns_when_it_succeeds(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_later(0.01, future.set_result, "acked")
    await asyncio.wait_for(watch.wait_one(future), 1)


async def test_one_unanswered_future_fails_itself_at_the_deadline(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await watch.wait_one(future)
    assert 0.3 <= loop.time() - started < 1.0
    assert future.done()  # an ack arriving now finds it done, as aiokafka expects


async def test_one_cancelled_delivery_future_is_a_kafka_error(watch: DeadlineWatch) -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_soon(future.cancel)
    with pytest.raises(KafkaError, match="cancelled"):
        await watch.wait_one(future)


async def test_cancelling_the_request_is_not_turned_into_a_kafka_error(watch: DeadlineWatch) -> None:
    future = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(watch.wait_one(future))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting

"""Keys land on the partition every Kafka client puts them on: Hookline's murmur2 is the Java
client's (`Utils.murmur2`), the value aiokafka's slower one computes."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from hookline.kafka import create_producer, key_partitioner, murmur2
from hookline.settings import KafkaSettings


def signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


@pytest.mark.parametrize(
    ("key", "java"),
    # Kafka's own UtilsTest.testMurmur2 cases (signed, as Java's int).
    [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536)],
)
def test_the_java_clients_values(key: bytes, java: int) -> None:
    assert signed(murmur2(key)) == java


def test_the_same_hash_as_aiokafka_for_every_length_and_tail() -> None:
    rng = random.Random(11)
    for length in range(0, 80):
        for _ in range(40):
            key = rng.randbytes(length)
            assert murmur2(key) == aiokafka_murmur2(key), key


def test_the_same_partition_as_the_default_partitioner() -> None:
    rng = random.Random(5)
    default = DefaultPartitioner()
    for partitions in (1, 3, 6, 7, 64):
        every = list(range(partitions))
        for _ in range(300):
            key = rng.randbytes(rng.randint(1, 40))
            assert key_partitioner(key, every, every) == default(key, every, every)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert {key_partitioner(None, [0, 1, 2], [2]) for _ in range(20)} == {2}


async def test_hooklines_producers_partition_with_it() -> None:
    producer = create_producer(KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    try:
        assert producer._partitioner is key_partitioner
    finally:
        await producer.stop()  # never started: only marks it closed

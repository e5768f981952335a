"""How Hookline's topics are replicated for the size of the Kafka cluster (hookline.topics.replication),
and that `ensure_topics` creates every topic that way for the brokers it finds."""

from __future__ import annotations

from typing import Any

import pytest

import hookline.kafka
from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings
from hookline.topics import Replication, replication


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [
        (1, Replication(factor=1, min_insync=1)),  # one node, as the local stack has always had
        (2, Replication(factor=2, min_insync=1)),  # either broker alone still takes writes
        (3, Replication(factor=3, min_insync=2)),  # one broker may be lost without losing a write
        (5, Replication(factor=3, min_insync=2)),
        (12, Replication(factor=3, min_insync=2)),
    ],
)
def test_three_replicas_two_in_sync_from_three_brokers_up(brokers: int, expected: Replication) -> None:
    assert replication(brokers) == expected


def test_a_replica_more_than_in_sync_always_so_one_broker_can_be_lost_from_three_up() -> None:
    for brokers in range(1, 20):
        copies = replication(brokers)
        assert 1 <= copies.min_insync <= copies.factor <= brokers
        if brokers >= 3:
            assert copies.factor - copies.min_insync == 1


def test_no_brokers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one broker"):
        replication(0)


class _Admin:
    """The admin client's calls that `ensure_topics` makes, answered for a cluster of `brokers`."""

    created: list[Any]

    def __init__(self, brokers: int) -> None:
        self.brokers = brokers
        self.created = []

    def __call__(self, **_: Any) -> _Admin:
        return self

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": n, "host": "127.0.0.1", "port": 9092 + n} for n in range(self.brokers)]}

    async def list_topics(self) -> list[str]:
        return [t.name for t in self.created]

    async def create_topics(self, topics: list[Any]) -> None:
        self.created += topics

    async def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [{"topic": t, "error_code": 0, "partitions": [{"leader": 0}]} for t in topics]


@pytest.mark.parametrize("brokers", [1, 3, 4])
async def test_ensure_topics_replicates_every_topic_for_the_brokers_it_finds(
    brokers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _Admin(brokers)
    monkeypatch.setattr(hookline.kafka, "AIOKafkaAdminClient", admin)
    settings = KafkaSettings(topic_prefix="repl")
    await ensure_topics(settings)
    expected = replication(brokers)
    assert {t.name for t in admin.created} == {
        settings.events_topic,
        settings.dlq_topic,
        settings.workflows_topic,
        settings.schedules_topic,
        settings.audit_topic,
        settings.decisions_topic,
    }
    for topic in admin.created:
        assert topic.replication_factor == expected.factor, topic.name
        assert topic.topic_configs["min.insync.replicas"] == str(expected.min_insync), topic.name
    # The topics' own settings are kept beside it.
    workflows = next(t for t in admin.created if t.name == settings.workflows_topic)
    assert workflows.topic_configs["cleanup.policy"] == "compact"

"""The production topology under faults (issue 17): under a load of 1,000 alerts sent as
Alertmanager sends them, the Kafka broker that leads the most partitions, a gateway, a triggers
process and a worker are SIGKILLed at staggered moments and the Temporal server's processes are
restarted; nothing else is restarted. Every alert still gets exactly one completed run, and no
step runs twice but those in flight on the killed worker. tests/cluster/harness.py says how each
part's recovery is measured; docs/cluster.md has a measured table."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookline.cluster import ClusterStack
from tests.cluster.conftest import TABLES
from tests.cluster.harness import ClusterDrill, write_table

pytestmark = pytest.mark.timeout(1200)  # marked integration and cluster by the folder's conftest


async def test_hooklines_topics_have_three_replicas_two_of_them_in_sync(cluster: ClusterStack) -> None:
    settings = cluster.kafka_settings
    topics = [
        settings.events_topic,
        settings.dlq_topic,
        settings.workflows_topic,
        settings.schedules_topic,
        settings.audit_topic,
        settings.decisions_topic,
    ]
    partitions = await cluster.kafka.partitions_of(topics)
    assert {p["topic"] for p in partitions} == set(topics)
    assert sum(1 for p in partitions if p["topic"] == settings.events_topic) == settings.events_partitions
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in partitions), partitions
    # Spread: every broker leads some of the events topic's partitions.
    assert {p["leader"] for p in partitions if p["topic"] == settings.events_topic} == {1, 2, 3}
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.kafka.bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    min_insync = {
        resource[3]: value
        for response in responses
        for resource in response.resources
        for name, value, *_ in resource[4]
        if name == "min.insync.replicas"
    }
    assert min_insync == dict.fromkeys(topics, "2")


async def test_every_alert_gets_exactly_one_completed_run_through_the_faults(cluster: ClusterStack) -> None:
    outcome = await ClusterDrill(cluster).run()
    TABLES.extend(outcome.table())
    write_table(cluster.base / "cluster-drill.txt", outcome)
    print("\n".join(outcome.table()))
    assert outcome.died == [], f"components exited on their own: {outcome.died}"
    assert (outcome.lost, outcome.extra, outcome.dlq) == (0, 0, 0), outcome.table()
    assert outcome.runs == outcome.completed == outcome.alerts == 1000, outcome.table()
    assert all(200 <= status < 300 or status in (0, 503) for status in outcome.answers), outcome.answers
    # A step in flight on the killed worker may run again, once, on the other: one still running,
    # or one that ended but whose completion the worker had not yet reported to Temporal. At most
    # as many as the worker runs at once (32 activity slots). No other step may run twice.
    assert outcome.twice <= outcome.rerun_allowed, (sorted(outcome.twice - outcome.rerun_allowed), outcome.table())
    assert len(outcome.twice) <= 32, outcome.table()
    assert all(f.recover_s is not None for f in outcome.faults), outcome.table()

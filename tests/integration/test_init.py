"""`hookline init` prepares a real Kafka and Temporal: topics, search attributes, definitions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

from hookline.cli import cli
from hookline.definitions import DefinitionStore
from hookline.kafka import create_consumer
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.temporal import SEARCH_ATTRIBUTES, connect
from tests.conftest import EXAMPLES


async def test_init_creates_topics_registers_attributes_and_applies_definitions(
    kafka_settings: KafkaSettings, temporal_settings: TemporalSettings, unique: str
) -> None:
    # A namespace of its own, created without Hookline's search attributes.
    namespace = f"ns-{unique}"
    client = await connect(temporal_settings)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(seconds=int(timedelta(days=1).total_seconds())),
        )
    )
    prefix = f"{unique}-init"
    env = {
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "HOOKLINE_KAFKA__TOPIC_PREFIX": prefix,
        "HOOKLINE_TEMPORAL__ADDRESS": temporal_settings.address,
        "HOOKLINE_TEMPORAL__NAMESPACE": namespace,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["init", str(EXAMPLES / "workflows")], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "incident-response: version 1" in result.output

    settings = KafkaSettings(bootstrap_servers=kafka_settings.bootstrap_servers, topic_prefix=prefix)
    consumer = create_consumer(settings, group_id=None)
    await consumer.start()
    try:
        topics = await consumer.topics()
    finally:
        await consumer.stop()
    assert {settings.events_topic, settings.dlq_topic, settings.workflows_topic} <= topics

    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)

    store = DefinitionStore(settings)
    await store.start()
    try:
        assert sorted(d.id for d in store.all()) == [
            "deploy-application",
            "incident-response",
            "multi-cloud-deployment",
        ]
    finally:
        await store.stop()


async def test_apply_refuses_definitions_naming_agents_that_are_not_configured(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    definition = tmp_path / "typo.yaml"
    definition.write_text("name: Typo\nsteps:\n  - name: Analyze\n    agent: analyser\n")
    env = {
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "HOOKLINE_KAFKA__TOPIC_PREFIX": kafka_settings.topic_prefix,
        "HOOKLINE_AGENTS_FILE": str(EXAMPLES / "agents.yaml"),
    }
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["apply", str(definition)], env=env)
    assert result.exit_code == 1
    assert 'steps[0].agent: unknown agent "analyser"' in result.output
    store = DefinitionStore(kafka_settings)
    await store.start()
    try:
        assert store.get("typo") is None
    finally:
        await store.stop()


async def test_local_retention_sets_the_dedupe_window_and_keeps_the_rest(
    temporal_settings: TemporalSettings, unique: str
) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from hookline.temporal import set_retention

    namespace = f"ret-{unique}"
    client = await connect(temporal_settings)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, description="kept", workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    await set_retention(client, namespace, 7)
    described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    assert described.config.workflow_execution_retention_ttl.seconds == 7 * 86400
    assert described.namespace_info.description == "kept"

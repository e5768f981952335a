"""Temporal goes away under load and comes back: the triggers retry, commit nothing meanwhile,
lose nothing and start nothing twice; the DLQ stays empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import TemporalServer, free_port
from hookline.temporal import connect
from schemas.agents import AgentCatalog
from tests.conftest import read_topic, running
from tests.integration.conftest import incident_workflow_ids, runs_of, started_runs
from triggers.app import TriggersService
from triggers.settings import TriggersOptions, TriggersSettings


@pytest.fixture
async def own_temporal(tmp_path: Path) -> AsyncIterator[TemporalServer]:
    """A Temporal of this test's own, on a SQLite file so that it can be stopped and restarted."""
    server = TemporalServer(tmp_path / "temporal", port=free_port(), db_file=tmp_path / "temporal" / "db.sqlite")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.usefixtures("definitions")
async def test_temporal_outage_under_load_loses_and_duplicates_nothing(
    gateway: TestClient[Any, Any],
    own_temporal: TemporalServer,
    kafka_settings: KafkaSettings,
    agents: AgentCatalog,
    unique: str,
    notification: Callable[..., dict[str, Any]],
) -> None:
    temporal = TemporalSettings(address=own_temporal.address, task_queue=unique, runner_queue_prefix=f"{unique}.r.")
    client: Client = await connect(temporal)
    options = TriggersOptions(group_id=unique, port=0, ticker=False, start_retry_max_s=0.5)
    service = TriggersService(
        TriggersSettings(kafka=kafka_settings, temporal=temporal, triggers=options), client, agents=agents
    )
    bodies = [notification(alerts=2) for _ in range(30)]
    workflow_ids = [wid for body in bodies for wid in incident_workflow_ids(body)]

    async def post(batch: list[dict[str, Any]]) -> None:
        for body in batch:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
            await asyncio.sleep(0.05)

    async with running(service.run, service.stop):
        await post(bodies[:10])
        own_temporal.stop()  # down while events keep coming
        await post(bodies[10:20])
        await asyncio.sleep(2)
        await own_temporal.start()
        await post(bodies[20:])
        for workflow_id in workflow_ids:
            await started_runs(client, workflow_id, timeout=30)
    for workflow_id in workflow_ids:
        assert len(await runs_of(client, workflow_id)) == 1, workflow_id
    assert await read_topic(kafka_settings, kafka_settings.dlq_topic) == []
    # The outage was felt: some starts waited over a second for Temporal to come back (retried by
    # the SDK, and by the triggers once the SDK gives up).
    registry = service.metrics.registry
    within_a_second = registry.get_sample_value("hookline_triggers_start_latency_seconds_bucket", {"le": "1.0"})
    total = registry.get_sample_value("hookline_triggers_start_latency_seconds_count")
    assert within_a_second is not None and total is not None and within_a_second < total

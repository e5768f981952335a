"""The triggers service as a real process: SIGKILL it mid-stream, start it again, and every alert
still runs exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.settings import KafkaSettings, TemporalSettings
from tests.integration.conftest import incident_workflow_ids, runs_of, start_component, wait_for_result


def start_triggers(kafka: KafkaSettings, temporal: TemporalSettings, group: str) -> subprocess.Popen[bytes]:
    return start_component(
        "triggers",
        kafka,
        temporal,
        HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX=temporal.runner_queue_prefix,
        HOOKLINE_TRIGGERS__GROUP_ID=group,
        HOOKLINE_TRIGGERS__PORT="0",
    )


@pytest.mark.long
@pytest.mark.usefixtures("definitions", "worker")
async def test_sigkilled_triggers_process_loses_and_duplicates_nothing(
    gateway: TestClient[Any, Any],
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    unique: str,
    notification: Callable[..., dict[str, Any]],
) -> None:
    bodies = [notification(alerts=2) for _ in range(20)]
    workflow_ids = [wid for body in bodies for wid in incident_workflow_ids(body)]
    for body in bodies:
        assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
    first = start_triggers(kafka_settings, temporal_settings, unique)
    try:
        # Kill it as soon as it has started a run: mid-batch, before it committed.
        for _ in range(300):
            started = [w for w in workflow_ids if await runs_of(temporal_client, w)]
            if started:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start_triggers(kafka_settings, temporal_settings, unique)
    try:
        for workflow_id in workflow_ids:
            assert (await wait_for_result(temporal_client, workflow_id)).status == "succeeded"
        await asyncio.sleep(1)  # past start-up, into the consume loop
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0  # drains, commits and leaves the group on SIGTERM
    for workflow_id in workflow_ids:
        assert len(await runs_of(temporal_client, workflow_id)) == 1

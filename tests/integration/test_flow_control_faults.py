"""Flow control under faults: the triggers and the worker (which runs the lanes and the runs) are
real processes, SIGKILLed in the middle of a storm against `concurrency: {key: service, limit: 1}`
and started again; afterwards every alert has run exactly once and no two runs of one service
overlapped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.settings import KafkaSettings, TemporalSettings
from tests.eventually import eventually
from tests.integration.conftest import runs_of, start_component, wait_for_result
from tests.integration.test_flow_control import alerts, assert_one_at_a_time, remediation, run_ids


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def test_sigkilled_triggers_and_worker_mid_storm_run_every_alert_once_and_never_two_of_a_service(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    tmp_path: Path,
    unique: str,
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text(yaml.safe_dump({"agents": {"slow": {"command": ["sleep", "0.3"], "timeout_s": 30}}}))
    # A name of its own: lanes are Temporal workflows, and the test session shares one namespace
    # (the storm test's idle lanes of "remediate" would take this test's events otherwise).
    await store.put(remediation("Remediate Faults", "slow", concurrency={"key": "${{ labels.service }}", "limit": 1}))
    env = {
        "HOOKLINE_AGENTS_FILE": str(agents),
        "HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX": temporal_settings.runner_queue_prefix,
    }

    def triggers() -> subprocess.Popen[bytes]:
        return start_component(
            "triggers",
            kafka_settings,
            temporal_settings,
            HOOKLINE_TRIGGERS__GROUP_ID=unique,
            HOOKLINE_TRIGGERS__PORT="0",
            **env,
        )

    def worker() -> subprocess.Popen[bytes]:
        return start_component("worker", kafka_settings, temporal_settings, HOOKLINE_WORKER__PORT="0", **env)

    services = [f"svc-{n}" for n in range(4)]
    bodies = [alerts(2, service=service) for _ in range(5) for service in services]
    service_of = {run: b["alerts"][0]["labels"]["service"] for b in bodies for run in run_ids("remediate-faults", b)}
    processes = [triggers(), worker()]
    try:
        for body in bodies[:10]:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202

        async def any_started() -> bool:
            return any([await runs_of(temporal_client, run) for run in service_of])

        await eventually(any_started, "a first run", timeout=60, interval=0.2)
        stop(processes[0], signal.SIGKILL)  # the triggers, while they send events to the lanes
        for body in bodies[10:]:
            assert (await gateway.post("/hooks/alertmanager", json=body)).status == 202
        processes[0] = triggers()
        await asyncio.sleep(2)
        stop(processes[1], signal.SIGKILL)  # the worker, with lanes and runs in its hands
        processes[1] = worker()
        results = {run: await wait_for_result(temporal_client, run, timeout=120) for run in service_of}
    finally:
        for process in processes:
            stop(process, signal.SIGTERM)

    await assert_one_at_a_time(temporal_client, results, service_of, per_service=10)

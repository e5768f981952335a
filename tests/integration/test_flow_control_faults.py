"""Flow control under faults: the triggers and the worker (which runs the lanes and the runs) are
real processes, SIGKILLed in the middle of a storm against `concurrency: {key: service, limit: 1}`
and, for the same alerts, in the middle of a batch per service; started again. Afterwards every
alert has run exactly once, no two runs of one service overlapped, and every alert is in exactly
one batch."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from temporalio.client import Client
from temporalio.service import RPCError

from hookline.definitions import DefinitionStore
from hookline.settings import KafkaSettings, TemporalSettings
from tests.eventually import eventually
from tests.integration.conftest import runs_of, start_component
from tests.integration.test_flow_control import (
    SHOW_EVENTS,
    alerts,
    assert_one_at_a_time,
    lane,
    remediation,
    results_of,
    run_ids,
    runs_of_definition,
)


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.long
async def test_sigkilled_triggers_and_worker_mid_storm_and_mid_batch_run_every_alert_once_and_never_two_of_a_service(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    tmp_path: Path,
    unique: str,
) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        yaml.safe_dump(
            {
                "agents": {
                    "slow": {"command": ["sleep", "0.3"], "timeout_s": 30},
                    "show": {"command": ["python3", "-c", SHOW_EVENTS], "timeout_s": 30},
                }
            }
        )
    )
    # Names of their own: lanes are Temporal workflows, and the test session shares one namespace
    # (another test's idle lanes of the same definition would take this test's events otherwise).
    await store.put(remediation("Remediate Faults", "slow", concurrency={"key": "${{ labels.service }}", "limit": 1}))
    # Each service's 10 alerts make one batch; none is full before the worker is killed, and none
    # closes on its wait (up to 60 s for the first run, a rebalance, 60 s for the collecting).
    await store.put(
        remediation(
            "Batch Faults", "show", batch={"key": "${{ labels.service }}", "max_events": 10, "max_wait": "300s"}
        )
    )
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
    event_ids: set[str] = set()

    async def post(sent: list[dict[str, Any]]) -> None:
        for body in sent:
            reply = await gateway.post("/hooks/alertmanager", json=body)
            assert reply.status == 202
            event_ids.update(event_id[:8] for event_id in (await reply.json())["event_ids"])

    async def collecting() -> list[int]:
        return [len((await lane(temporal_client, "batch-faults", name)).collected) for name in services]

    processes = [triggers(), worker()]
    try:
        await post(bodies[:10])

        async def any_started() -> bool:
            return any([await runs_of(temporal_client, run) for run in service_of])

        await eventually(any_started, "a first run", timeout=60, interval=0.2)
        stop(processes[0], signal.SIGKILL)  # the triggers, while they send events to the lanes
        await post(bodies[10:15])
        processes[0] = triggers()
        # Every service's batch is being collected (its last alerts are not even sent yet).
        held: list[int] = await eventually(
            collecting, "batches being collected", until=lambda c: min(c) >= 4, timeout=60, retrying=RPCError
        )
        assert max(held) < 10
        stop(processes[1], signal.SIGKILL)  # the worker, with lanes, batches and runs in its hands
        await post(bodies[15:])
        processes[1] = worker()
        results = await results_of(temporal_client, service_of, timeout=120)
        batch_runs: list[Any] = await eventually(
            lambda: runs_of_definition(temporal_client, "batch-faults"),
            "a batch per service",
            until=lambda runs: len(runs) >= len(services),
            timeout=60,
        )
        batches = await results_of(temporal_client, (w.id for w in batch_runs), timeout=60)
    finally:
        for process in processes:
            stop(process, signal.SIGTERM)

    await assert_one_at_a_time(temporal_client, "remediate-faults", results, service_of, per_service=10)
    held_ids = [(batch.steps["fix"].output or "").split() for batch in batches.values()]
    assert sorted(len(ids) for ids in held_ids) == [10] * len(services)
    assert sorted(i for ids in held_ids for i in ids) == sorted(event_ids)  # every alert in one batch, none twice
    assert len(event_ids) == len(service_of)

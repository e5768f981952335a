"""Events that cannot start their workflow go to the DLQ with the reason and the partition moves
on; `hookline replay` re-publishes them once fixed; `hookline explain` says what would start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from click.testing import CliRunner
from temporalio.client import Client

from hookline.cli import cli
from hookline.definitions import DefinitionStore
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings
from tests.conftest import DATA, read_topic, running
from tests.integration.conftest import runs_of, started_runs
from triggers.app import TriggersService

STRICT = {
    "name": "Strict Input",
    "trigger": {"type": "webhook", "source": "alertmanager", "input": {"service": "${{ labels.job }}"}},
    "inputs": {"type": "object", "required": ["service"], "properties": {"service": {"type": "string"}}},
    "steps": [{"name": "fix", "agent": "remediator"}],
}


def env_of(kafka: KafkaSettings) -> dict[str, str]:
    return {
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "HOOKLINE_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
    }


async def cli_run(args: list[str], kafka: KafkaSettings) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env_of(kafka), catch_exceptions=False)


async def test_unstartable_event_is_dead_lettered_then_replayed_once_fixed(
    gateway: TestClient[Any, Any],
    store: DefinitionStore,
    kafka_settings: KafkaSettings,
    temporal_client: Client,
    triggers_service: Callable[..., TriggersService],
    notification: Callable[..., dict[str, Any]],
) -> None:
    await store.put(STRICT)
    await store.put({"name": "Lenient", "trigger": {"type": "webhook", "source": "alertmanager"}})
    body = notification(alerts=1)
    del body["alerts"][0]["labels"]["job"]  # the strict definition's input needs it
    service = triggers_service()
    async with running(service.run, service.stop):
        reply = await gateway.post("/hooks/alertmanager", json=body)
        assert reply.status == 202
        [dead] = await read_topic(kafka_settings, kafka_settings.dlq_topic, expect=1)
        headers = dict(dead.headers)
        assert b"strict-input v1" in headers["hookline_dlq_reason"]
        assert b"input.service: None is not of type 'string'" in headers["hookline_dlq_reason"]
        assert headers["hookline_dlq_topic"] == kafka_settings.events_topic.encode()
        dedupe = headers["ce_dedupekey"].decode()
        strict, lenient = (event_run_id(d, "alertmanager", dedupe) for d in ("strict-input", "lenient"))
        # The same record still started the definition it can start: the partition moved on.
        assert await started_runs(temporal_client, lenient, timeout=10)
        assert await runs_of(temporal_client, strict) == []

        listing = await cli_run(["replay", "--dry-run"], kafka_settings)
        assert listing.exit_code == 0 and "would replay 1 of 1" in listing.output
        await asyncio.sleep(1)
        assert await runs_of(temporal_client, strict) == []

        await store.put({**STRICT, "inputs": {"type": "object"}})  # the fix: input no longer required
        for _ in range(2):  # replaying twice starts it once
            replayed = await cli_run(["replay", "--reason", "is not of type"], kafka_settings)
            assert replayed.exit_code == 0 and "replayed 1 of 1" in replayed.output
        assert len(await started_runs(temporal_client, strict, timeout=10)) == 1
        await asyncio.sleep(1)
    assert len(await runs_of(temporal_client, strict)) == 1
    assert len(await runs_of(temporal_client, lenient)) == 1


async def test_explain_names_what_would_start_and_why_not_without_starting_anything(
    store: DefinitionStore, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    await store.put(STRICT)
    await store.put(
        {
            "name": "Only Critical",
            "trigger": {"type": "webhook", "source": "alertmanager", "filter": ['severity="page"']},
        }
    )
    await store.put({"name": "By Hand"})
    result = await cli_run(
        ["explain", "--source", "alertmanager", str(DATA / "alertmanager-firing.json")], kafka_settings
    )
    assert result.exit_code == 0, result.output
    # stdout only: a log line of the command may go to stderr, which `output` mixes in.
    first = json.loads(result.stdout[: result.stdout.index("\n}\n") + 2])
    rows = {row["definition"]: row for row in first["definitions"]}
    assert rows["by-hand"]["reason"] == "manual trigger"
    assert rows["only-critical"]["reason"].startswith('severity="page" does not hold')
    assert rows["strict-input"]["matches"] is True
    assert rows["strict-input"]["input"] == {"service": "checkout"}
    assert rows["strict-input"]["workflow_id"].startswith("strict-input:event:alertmanager/")
    assert await read_topic(kafka_settings, kafka_settings.events_topic) == []

    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    refused = await asyncio.to_thread(CliRunner().invoke, cli, ["explain", str(bad)], env=env_of(kafka_settings))
    assert refused.exit_code == 1 and "not a CloudEvent as JSON" in refused.output

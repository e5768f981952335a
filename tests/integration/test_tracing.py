"""One trace per event: the gateway, triggers and worker as real processes export their spans with
OTLP (over HTTP, and over gRPC) to a collector this test runs; decoded, they form one trace from
the webhook request (which continues the sender's `traceparent`) through Kafka, the match and
start, the workflow and the step activity, and the step itself sees the trace in `TRACEPARENT`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from temporalio.client import Client

from hookline.definitions import DefinitionStore
from hookline.runs import event_run_id
from hookline.settings import KafkaSettings, TemporalSettings
from hookline.stack import free_port
from tests.eventually import eventually
from tests.integration.conftest import start_component, wait_for_result
from tests.notifications import notification

TRACED = {
    "name": "Traced",
    "trigger": {"type": "webhook", "source": "alertmanager"},
    "steps": [{"name": "show", "agent": "tracer"}],
}


class Collector(TraceServiceServicer):
    """An OTLP endpoint, over HTTP or gRPC: the spans it received, by trace id, as (service, span
    name)."""

    def __init__(self) -> None:
        self.traces: dict[str, list[tuple[str, str]]] = defaultdict(list)

    def _keep(self, export: ExportTraceServiceRequest) -> None:
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.traces[span.trace_id.hex()].append((attributes.get("service.name", "?"), span.name))

    async def receive(self, request: web.Request) -> web.Response:  # OTLP/HTTP
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        self._keep(export)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def Export(  # OTLP/gRPC: the service's method name
        self, request: ExportTraceServiceRequest, context: object
    ) -> ExportTraceServiceResponse:
        self._keep(request)
        return ExportTraceServiceResponse()


@pytest.fixture(params=["http", "grpc"])
async def collector(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Collector, str, str]]:
    """A collector speaking the protocol the test is run with: (it, its endpoint, the protocol)."""
    received = Collector()
    port = free_port()
    if request.param == "grpc":
        server = grpc.aio.server()
        add_TraceServiceServicer_to_server(received, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        yield received, f"http://127.0.0.1:{port}", "grpc"
        await server.stop(grace=None)
        return
    app = web.Application()
    app.router.add_post("/v1/traces", received.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield received, f"http://127.0.0.1:{port}", "http"
    await runner.cleanup()


async def test_one_trace_runs_from_the_webhook_through_kafka_and_temporal_into_the_step(
    collector: tuple[Collector, str, str],
    kafka_settings: KafkaSettings,
    temporal_settings: TemporalSettings,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    received, endpoint, protocol = collector
    agents = tmp_path / "agents.yaml"
    agents.write_text(
        yaml.safe_dump({"agents": {"tracer": {"runner": "shell", "command": ["sh", "-c", "echo $TRACEPARENT"]}}})
    )
    store = DefinitionStore(kafka_settings)
    await store.start()
    await store.put(TRACED)
    await store.stop()

    port = free_port()
    tracing = {
        "HOOKLINE_TRACING__ENDPOINT": endpoint,
        "HOOKLINE_TRACING__PROTOCOL": protocol,
        "HOOKLINE_TRACING__EXPORT_DELAY_MS": "100",
        "HOOKLINE_AGENTS_FILE": str(agents),
        "HOOKLINE_TEMPORAL__RUNNER_QUEUE_PREFIX": temporal_settings.runner_queue_prefix,
    }
    processes: list[subprocess.Popen[bytes]] = [
        start_component("gateway", kafka_settings, temporal_settings, HOOKLINE_GATEWAY__PORT=str(port), **tracing),
        start_component(
            "triggers",
            kafka_settings,
            temporal_settings,
            HOOKLINE_TRIGGERS__GROUP_ID=kafka_settings.topic_prefix,
            HOOKLINE_TRIGGERS__PORT="0",
            **tracing,
        ),
        start_component("worker", kafka_settings, temporal_settings, HOOKLINE_WORKER__PORT="0", **tracing),
    ]
    try:
        sender_trace = secrets.token_hex(16)
        body = notification(1, "traced")
        async with aiohttp.ClientSession() as http:

            async def accepted(body: dict[str, Any], headers: dict[str, str]) -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(
                        f"http://127.0.0.1:{port}/hooks/alertmanager", json=body, headers=headers
                    ) as reply:
                        return reply.status == 202
                return False

            # An alert outside the trace first: the traced one is not among the first records,
            # which go through aiokafka's send() until the gateway knows the topic's partitions.
            warm_up = notification(1, "warm-up")
            await eventually(lambda: accepted(warm_up, {}), "the gateway to accept an alert", timeout=30, interval=0.2)
            traceparent = {"traceparent": f"00-{sender_trace}-{secrets.token_hex(8)}-01"}
            await eventually(lambda: accepted(body, traceparent), "the gateway to accept the alert", timeout=30)
        dedupe = await _dedupe_key(kafka_settings, "traced-0:8080")
        result = await wait_for_result(temporal_client, event_run_id("traced", "alertmanager", dedupe), timeout=60)
        step_traceparent = result.steps["show"].output.strip()
        assert step_traceparent.split("-")[1] == sender_trace  # the step runs in the sender's trace

        def spans() -> list[tuple[str, str]]:
            return received.traces.get(sender_trace, [])

        wanted = {
            ("hookline-gateway", "POST /hooks/alertmanager"),
            ("hookline-triggers", "hookline.triggers.decide"),
            ("hookline-triggers", "StartWorkflow:HooklineRun"),
            ("hookline-worker", "RunWorkflow:HooklineRun"),
            ("hookline-worker", "RunActivity:run_step"),
        }
        found = await eventually(
            spans,
            lambda: f"spans {sorted(wanted)} in trace {sender_trace}",
            until=lambda s: wanted <= set(s),
            timeout=20,
        )
        assert any(service == "hookline-gateway" and "send" in name for service, name in found)  # aiokafka's
        assert len(received.traces) >= 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _dedupe_key(kafka: KafkaSettings, instance: str) -> str:
    """The dedupe key of the event of the alert of `instance`, among the two the test sent."""
    from tests.conftest import events_of, read_topic

    events = events_of(await read_topic(kafka, kafka.events_topic, expect=2))
    [key] = [e.dedupekey for e in events if e.data["alert"]["labels"]["instance"] == instance]
    return key

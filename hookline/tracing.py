"""One trace per event, from the webhook to the step (OpenTelemetry); off unless configured.

With `tracing.endpoint` set, each process exports its spans with OTLP (gRPC or HTTP) and the
maintained instrumentations do the hops they know: the aiohttp server continues the sender's
W3C `traceparent` (or starts a trace), aiokafka puts the trace context in each produced record's
headers, Temporal's interceptor (`temporalio.contrib.opentelemetry`) carries it from the start
of a run into its workflow and step activities, and the aiohttp client sends it with the HTTP
runner's requests. Hookline adds what no instrumentation knows: the event's CloudEvents
distributed-tracing extension (`traceparent`, so the event itself names its trace), the triggers'
span around matching and starting one record (continuing the record's context), and the
`TRACEPARENT` variable of process-like steps. Log lines carry the trace id of their span.

Off, nothing is instrumented and the hot paths pay one boolean test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hookline.settings import TracingSettings

if TYPE_CHECKING:  # imported when tracing is on: off, a process does not load OpenTelemetry
    from opentelemetry.trace import Span

__all__ = [
    "configure_tracing",
    "current_traceparent",
    "enabled",
    "linked_span",
    "record_span",
    "shutdown_tracing",
    "temporal_interceptors",
    "trace_ids",
]

_state = {"on": False}


def enabled() -> bool:
    return _state["on"]


def configure_tracing(settings: TracingSettings, component: str) -> None:
    """Export this process's spans to `settings.endpoint` and instrument aiohttp and aiokafka;
    nothing without an endpoint. Once, at process start."""
    if not settings.endpoint:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    exporter: SpanExporter
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=settings.endpoint, insecure=settings.insecure)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=settings.endpoint.rstrip("/") + "/v1/traces")
    resource = Resource.create({"service.name": f"{settings.service_prefix}{component}"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=settings.export_delay_ms))
    trace.set_tracer_provider(provider)
    AioHttpServerInstrumentor().instrument()
    AioHttpClientInstrumentor().instrument()
    AIOKafkaInstrumentor().instrument()
    _state["on"] = True


def shutdown_tracing() -> None:
    """Export what is still buffered (a process that ends would otherwise drop its last spans)."""
    if not enabled():
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def temporal_interceptors() -> list[Any]:
    """Temporal client interceptors: the tracing one when tracing is on (a worker built on the
    client uses it too)."""
    if not enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span; None when tracing is off or there is none."""
    if not enabled():
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class _Headers:
    """Reads a Kafka record's headers (name, bytes) for the propagator."""

    @staticmethod
    def get(carrier: Iterable[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [v.decode(errors="replace") for k, v in carrier if k == key and v is not None]
        return values or None

    @staticmethod
    def keys(carrier: Iterable[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


@contextmanager
def record_span(name: str, headers: Iterable[tuple[str, bytes | None]], **attributes: Any) -> Iterator[Span | None]:
    """A span continuing the trace a Kafka record's headers carry (`traceparent`, or the event's
    CloudEvents `ce_traceparent`), current inside the block; nothing when tracing is off."""
    if not enabled():
        yield None
        return
    from opentelemetry import context, propagate, trace

    carrier = list(headers)
    if not any(k == "traceparent" for k, _ in carrier):
        carrier = [("traceparent" if k == "ce_traceparent" else k, v) for k, v in carrier]
    parent = propagate.extract(carrier, getter=_Headers)  # type: ignore[arg-type]
    token = context.attach(parent)
    try:
        with trace.get_tracer("hookline").start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        context.detach(token)


@contextmanager
def linked_span(name: str, traceparents: Iterable[str | None]) -> Iterator[None]:
    """A span, current inside the block, linked to the traces `traceparents` name: a debounced
    or batched run's step links the trace of each event it holds. Nothing when tracing is off
    or no event names a trace."""
    if not enabled():
        yield
        return
    from opentelemetry import propagate, trace

    links = []
    for traceparent in traceparents:
        if traceparent:
            context = trace.get_current_span(propagate.extract({"traceparent": traceparent})).get_span_context()
            if context.is_valid:
                links.append(trace.Link(context))
    if not links:
        yield
        return
    with trace.get_tracer("hookline").start_as_current_span(name, links=links):
        yield


def trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the trace and span id of the current span, when there is one."""
    if enabled():
        from opentelemetry import trace

        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event["trace_id"] = format(span_context.trace_id, "032x")
            event["span_id"] = format(span_context.span_id, "016x")
    return event

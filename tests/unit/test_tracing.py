"""hookline.tracing without a collector: a record's trace context is continued (also from the
CloudEvents extension alone), log lines carry the trace id, and all of it is off by default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hookline import tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def tracing_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(tracing._state, "on", True)
    yield


@pytest.mark.usefixtures("tracing_on")
@pytest.mark.parametrize("header", ["traceparent", "ce_traceparent"])
def test_a_records_trace_is_continued(header: str) -> None:
    with tracing.record_span("decide", [("ce_id", b"1"), (header, PARENT.encode())]):
        inside = tracing.current_traceparent()
    assert inside is not None and inside.split("-")[1] == TRACE


@pytest.mark.usefixtures("tracing_on")
def test_log_lines_carry_the_trace_id_of_their_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        event = tracing.trace_ids(None, "info", {"event": "hello"})
    assert event["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert tracing.trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}


def test_off_by_default_nothing_is_traced() -> None:
    assert not tracing.enabled()
    with tracing.record_span("decide", [("traceparent", PARENT.encode())]) as span:
        assert span is None and tracing.current_traceparent() is None
    assert tracing.temporal_interceptors() == []


@pytest.mark.usefixtures("tracing_on")
def test_a_collected_runs_step_links_the_trace_of_each_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer", lambda name, *args, **kwargs: provider.get_tracer(name))
    other = "0af7651916cd43dd8448eb211c80319c"
    with tracing.linked_span("step", [PARENT, None, f"00-{other}-b7ad6b7169203331-01", "not a traceparent"]):
        pass
    [span] = exported.get_finished_spans()
    assert sorted(format(link.context.trace_id, "032x") for link in span.links) == sorted([TRACE, other])
    with tracing.linked_span("step", [None]):  # no event names a trace: no span
        pass
    assert len(exported.get_finished_spans()) == 1

"""OpenTelemetry spans for publish and deliver, recorded by the real SDK into its
in-memory exporter: each span's parent and trace id follow the events'
``traceparent``, which reaches the consumer as the producer's publish wrote it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import sealbus
from sealbus import tracing

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def _router() -> tuple[sealbus.Router, sealbus.Principal, sealbus.Subscription]:
    router = sealbus.Router(allow_schemaless=True)
    who = router.principal("checkout")
    router.policy.allow_publish(who, "orders.*")
    router.policy.allow_subscribe(who, "orders.*")
    return router, who, router.subscribe(who, "orders.*")


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _hex(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def test_publish_and_deliver_spans_follow_the_producers_current_span(spans: InMemorySpanExporter) -> None:
    router, who, sub = _router()
    app = tracing.tracer()
    assert app is not None
    with app.start_as_current_span("checkout request") as request:
        router.producer(who).publish_many("orders.placed", [{"n": 1}, {"n": 2}])
    msgs = sub.poll(10)
    (publish,) = _named(spans, "publish orders.placed")
    (deliver,) = _named(spans, "deliver orders.placed")
    trace_id = request.get_span_context().trace_id
    # The publish is a child of the request; the events carry the publish span.
    assert publish.kind == SpanKind.PRODUCER and publish.parent is not None
    assert publish.parent.span_id == request.get_span_context().span_id
    assert publish.context.trace_id == trace_id
    assert publish.attributes is not None and publish.attributes["messaging.batch.message_count"] == 2
    want = f"00-{_hex(trace_id, 32)}-{_hex(publish.context.span_id, 16)}-"
    assert all(m.event.traceparent is not None and m.event.traceparent.startswith(want) for m in msgs)
    # One deliver span for the poll's two events of one trace, a child of the publish.
    assert deliver.kind == SpanKind.CONSUMER and deliver.parent is not None
    assert deliver.parent.span_id == publish.context.span_id and deliver.context.trace_id == trace_id
    assert deliver.attributes is not None and deliver.attributes["messaging.batch.message_count"] == 2
    router.close()


def test_a_given_traceparent_is_kept_and_parents_both_spans(spans: InMemorySpanExporter) -> None:
    router, who, sub = _router()
    router.producer(who).publish("orders.placed", {"n": 1}, traceparent=TRACEPARENT)
    (msg,) = sub.poll(10)
    assert msg.event.traceparent == TRACEPARENT
    for name in ("publish orders.placed", "deliver orders.placed"):
        (span,) = _named(spans, name)
        assert _hex(span.context.trace_id, 32) == TRACE
        assert span.parent is not None and _hex(span.parent.span_id, 16) == PARENT
    router.close()


def test_a_poll_makes_a_deliver_span_per_trace_and_type(spans: InMemorySpanExporter) -> None:
    router, who, sub = _router()
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    p = router.producer(who)
    p.publish_many("orders.placed", [{"n": i} for i in range(3)], traceparent=TRACEPARENT)
    p.publish("orders.placed", {"n": 3}, traceparent=other)
    p.publish("orders.paid", {"n": 4}, traceparent=TRACEPARENT)
    batch = sub.poll_batch(100)
    assert len(batch) == 5
    delivered = {
        (_hex(s.context.trace_id, 32), s.name): (s.attributes or {})["messaging.batch.message_count"]
        for s in spans.get_finished_spans()
        if s.name.startswith("deliver ")
    }
    assert delivered == {
        (TRACE, "deliver orders.placed"): 3,
        ("1" * 32, "deliver orders.placed"): 1,
        (TRACE, "deliver orders.paid"): 1,
    }
    router.close()


def test_a_refused_publish_ends_its_span_as_an_error(spans: InMemorySpanExporter) -> None:
    router, _who, _sub = _router()
    intruder = router.principal("plugin")
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(intruder).publish("orders.placed", {"n": 1})
    (span,) = _named(spans, "publish orders.placed")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "PolicyDenied"
    assert [e.name for e in span.events] == ["exception"]
    router.close()


async def test_an_async_publish_span_ends_with_its_receipt(spans: InMemorySpanExporter) -> None:
    router, who, sub = _router()
    p = router.producer(who)
    pending = asyncio.ensure_future(p.publish_async("orders.placed", {"n": 1}, traceparent=TRACEPARENT))
    assert _named(spans, "publish orders.placed") == []  # not ended before its outcome
    receipt = await pending
    (span,) = _named(spans, "publish orders.placed")
    assert span.status.status_code == StatusCode.UNSET
    assert _hex(span.context.trace_id, 32) == TRACE
    (msg,) = await sub.poll_async(10, 5.0)
    assert msg.id == receipt.id and msg.event.traceparent == TRACEPARENT
    router.close()


def test_no_tracer_no_span_and_no_traceparent() -> None:
    assert tracing.tracer() is None  # OpenTelemetry installed, no provider configured
    router, who, sub = _router()
    router.producer(who).publish("orders.placed", {"n": 1})
    (msg,) = sub.poll(10)
    assert msg.event.traceparent is None
    router.close()


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


ROUND_TRIP = """
    import sealbus
    r = sealbus.Router(allow_schemaless=True)
    w = r.principal("w")
    r.policy.allow_publish(w, "t")
    r.policy.allow_subscribe(w, "t")
    s = r.subscribe(w, "t")
    r.producer(w).publish("t", {"n": 1})
    (m,) = s.poll(10)
"""


def test_without_opentelemetry_installed_the_router_works_untraced() -> None:
    hide = 'import sys\nsys.modules["opentelemetry"] = None  # as if the extra were not installed\n'
    out = _run(
        hide
        + textwrap.dedent(ROUND_TRIP)
        + "print(sealbus.tracing.AVAILABLE, sealbus.tracing.tracer(), m.event.traceparent)"
    )
    assert out == "False None None"


def test_the_global_tracer_provider_is_followed() -> None:
    setup = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        """
    )
    report = "print(sorted(s.name for s in exporter.get_finished_spans()), m.event.traceparent is not None)"
    out = _run(setup + textwrap.dedent(ROUND_TRIP) + report)
    assert out == "['deliver t', 'publish t'] True"

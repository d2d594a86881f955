"""A trace across two routers joined by the bridge, through a real nats-server: the
spans of the publish, the bridge's export and import, and the remote delivery share
one trace id, each a child of the producer's publish span, whose context the events
carry as their ``traceparent`` unchanged."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import sealbus
from orders import SCHEMA, valid_event
from sealbus import tracing
from sealbus.nats import Bridge, Identity
from test_nats_bridge import Server, drain, importer, pytestmark, server  # noqa: F401 (fixture, marks)

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def test_publish_bridge_hops_and_remote_delivery_share_one_trace(
    tmp_path: Path,
    server: Server,  # noqa: F811
    spans: InMemorySpanExporter,
) -> None:
    transit = sealbus.KeyRing.generate()
    ra, rb = sealbus.Router(tmp_path / "a"), importer(tmp_path)
    ra.schemas.register("orders.placed", SCHEMA)
    checkout = ra.principal("checkout")
    ra.policy.allow_publish(checkout, "orders.*")
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    sub = rb.subscribe(shipping, "orders.placed")
    ia = Identity.generate()
    with (
        Bridge(ra, server.url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"]),
        Bridge(
            rb,
            server.url,
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=transit,
            imports=["orders.*"],
            trust={"shop-a": ia.public_bytes},
        ),
    ):
        rng = random.Random(5)
        receipts = ra.producer(checkout).publish_many("orders.placed", [valid_event(rng) for _ in range(3)])
        got = drain(sub, 3)
    ra.close()
    rb.close()
    assert sorted(m.id for m in got) == sorted(receipts.ids)

    finished = spans.get_finished_spans()
    (publish,) = [s for s in finished if s.name == "publish orders.placed"]
    trace_id, parent = publish.context.trace_id, publish.context.span_id
    # What the producer's publish wrote is what the remote consumer reads.
    assert {m.event.traceparent for m in got} == {f"00-{trace_id:032x}-{parent:016x}-{publish.context.trace_flags:02x}"}

    def hop(name: str, **attrs: str) -> list[tuple[SpanKind, int, int | None, int]]:
        return [
            (
                s.kind,
                s.context.trace_id,
                s.parent.span_id if s.parent else None,
                (s.attributes or {})["messaging.batch.message_count"],
            )
            for s in finished
            if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
        ]

    # Batches may be cut anywhere on the way: every hop's spans count the three events.
    for name, kind, attrs in (
        ("bridge export orders.placed", SpanKind.PRODUCER, {"sealbus.bridge": "shop-a"}),
        ("bridge import orders.placed", SpanKind.CONSUMER, {"sealbus.bridge": "shop-b"}),
        ("deliver orders.placed", SpanKind.CONSUMER, {"sealbus.principal": "shipping"}),
    ):
        seen = hop(name, **attrs)
        assert seen and {(k, t, p) for k, t, p, _n in seen} == {(kind, trace_id, parent)}, name
        assert sum(n for *_rest, n in seen) == 3, name

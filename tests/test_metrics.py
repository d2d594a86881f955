"""The Prometheus collector reads the router's counters at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sealbus
from sealbus.metrics import RouterCollector

prometheus_client = pytest.importorskip("prometheus_client")


def test_a_scrape_shows_publishes_and_refusals_by_reason() -> None:
    router = sealbus.Router(allow_schemaless=True)
    a, b = router.principal("a"), router.principal("b")
    router.policy.allow_publish(a, "t")
    router.producer(a).publish("t", {"x": 1})
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(b).publish("t", {"x": 1})
    registry = prometheus_client.CollectorRegistry()
    registry.register(RouterCollector(router, name="shop"))
    text = prometheus_client.generate_latest(registry).decode()
    assert 'sealbus_published_total{router="shop"} 1.0' in text
    assert 'sealbus_refused_total{reason="policy",router="shop"} 1.0' in text
    assert 'sealbus_refused_total{reason="schema",router="shop"} 0.0' in text


def _scrape(router: sealbus.Router, name: str = "shop") -> prometheus_client.CollectorRegistry:
    registry = prometheus_client.CollectorRegistry()
    registry.register(RouterCollector(router, name=name))
    return registry


def test_counts_per_type_principal_and_refusal_reason() -> None:
    router = sealbus.Router(allow_schemaless=True)
    a, b = router.principal("a"), router.principal("b")
    router.policy.allow_publish(a, "orders.*")
    router.policy.allow_subscribe(b, "orders.*")
    router.schemas.register("orders.paid", {"type": "object", "required": ["total"]})
    sub = router.subscribe(b, "orders.*")
    registry = _scrape(router)
    pa = router.producer(a)
    pa.publish_many("orders.placed", [{"n": i} for i in range(3)])
    pa.publish("orders.paid", {"total": 1})
    with pytest.raises(sealbus.ValidationError):
        pa.publish_many("orders.paid", [{"total": 1}, {}])
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(b).publish("orders.placed", {"n": 9})
    assert len(sub.poll(100)) == 4

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"router": "shop", **labels})

    published = "sealbus_events_published_total"
    assert value(published, type="orders.placed", principal="a") == 3
    assert value(published, type="orders.paid", principal="a") == 1
    assert value(published, type="orders.placed", principal="b") is None
    refused = "sealbus_events_refused_total"
    assert value(refused, type="orders.paid", principal="a", reason="schema") == 2  # the whole batch
    assert value(refused, type="orders.placed", principal="b", reason="policy") == 1
    delivered = "sealbus_events_delivered_total"
    assert value(delivered, type="orders.placed", principal="b") == 3
    assert value(delivered, type="orders.paid", principal="b") == 1
    # One latency observation per publish call accepted, one per event delivered.
    assert value("sealbus_publish_latency_seconds_count", type="orders.placed", principal="a") == 1
    assert value("sealbus_publish_latency_seconds_count", type="orders.paid", principal="a") == 1
    assert value("sealbus_delivery_latency_seconds_count", type="orders.placed", principal="b") == 3
    router.close()


def test_latency_histograms_place_observations_in_their_buckets() -> None:
    router = sealbus.Router(allow_schemaless=True)
    a = router.principal("a")
    router.policy.allow_publish(a, "t")
    router.policy.allow_subscribe(a, "t")
    sub = router.subscribe(a, "t")
    registry = _scrape(router)
    tally = router._tally
    assert tally is not None
    # An event stamped an hour ago is an hour late when polled: past every finite bucket.
    event = sealbus.Event.from_json(
        '{"specversion":"1.0","id":"e-1","source":"a","type":"t","time":"2020-01-01T00:00:00.123456789Z"}'
    )
    tally.deliver("a", [(event.type, event.time)], datetime.now(UTC))
    router.producer(a).publish("t", {})
    sub.poll(10)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(
            "sealbus_delivery_latency_seconds_bucket", {"router": "shop", "type": "t", "principal": "a", "le": le}
        )

    assert bucket("10.0") == 1  # the event just published
    assert bucket("+Inf") == 2
    total = registry.get_sample_value(
        "sealbus_delivery_latency_seconds_sum", {"router": "shop", "type": "t", "principal": "a"}
    )
    assert total is not None and total > 3600
    router.close()


async def test_async_publishes_are_counted_when_their_receipts_come() -> None:
    router = sealbus.Router(allow_schemaless=True)
    a, b = router.principal("a"), router.principal("b")
    router.policy.allow_publish(a, "t")
    registry = _scrape(router)
    await router.producer(a).publish_many_async("t", [{}, {}])
    with pytest.raises(sealbus.PolicyDenied):
        await router.producer(b).publish_async("t", {})
    labels = {"router": "shop", "type": "t"}
    assert registry.get_sample_value("sealbus_events_published_total", {**labels, "principal": "a"}) == 2
    refused = registry.get_sample_value(
        "sealbus_events_refused_total", {**labels, "principal": "b", "reason": "policy"}
    )
    assert refused == 1
    router.close()


def test_no_collector_no_tally() -> None:
    router = sealbus.Router(allow_schemaless=True)
    a = router.principal("a")
    router.policy.allow_publish(a, "t")
    router.producer(a).publish("t", {})
    assert router._tally is None
    router.close()

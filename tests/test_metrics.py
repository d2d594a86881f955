"""The Prometheus collector reads the router's counters at scrape time."""

from __future__ import annotations

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

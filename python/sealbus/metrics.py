"""Prometheus metrics for a router, through a collector the service registers.

sealbus starts no thread and opens no port of its own: with ``prometheus_client``
installed (``pip install 'sealbus[metrics]'``), register a collector with the
registry the service already exposes::

    from prometheus_client import REGISTRY
    REGISTRY.register(sealbus.metrics.RouterCollector(router, name="shop-a", bridge=bridge))

Each scrape reads the router's counters (and the bridge's) at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["RouterCollector"]

#: Router counters that count events, and the refusal reason each one stands for.
_REFUSALS = {"refused_policy": "policy", "refused_schema": "schema", "refused_backpressure": "backpressure"}


class RouterCollector:
    """A ``prometheus_client`` collector over :meth:`sealbus.Router.counters` and,
    when given, :meth:`sealbus.nats.Bridge.stats`."""

    def __init__(self, router: Any, *, name: str = "router", bridge: Any = None) -> None:
        self._router = router
        self._name = name
        self._bridge = bridge

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self._router.counters()
        labels = ["router"]
        for key, help_text in (
            ("published", "events accepted and stored or queued"),
            ("routed", "deliveries queued for subscriptions"),
            ("read_back", "deliveries read back from the durable log"),
            ("fsyncs", "fsyncs of the durable log"),
        ):
            if key in c:
                m = CounterMetricFamily(f"sealbus_{key}", help_text, labels=labels)
                m.add_metric([self._name], float(c[key]))
                yield m
        refused = CounterMetricFamily("sealbus_refused", "publishes refused, by reason", labels=[*labels, "reason"])
        for key, reason in _REFUSALS.items():
            refused.add_metric([self._name, reason], float(c.get(key, 0)))
        yield refused
        if "log_bytes" in c:
            g = GaugeMetricFamily("sealbus_log_bytes", "bytes in the durable log", labels=labels)
            g.add_metric([self._name], float(c["log_bytes"]))
            yield g
        if self._bridge is not None:
            s = self._bridge.stats()
            m = CounterMetricFamily("sealbus_bridge_events", "events through the bridge", labels=[*labels, "way"])
            m.add_metric([self._name, "exported"], float(s["exported"]))
            m.add_metric([self._name, "imported"], float(s["imported"]))
            yield m
            r = CounterMetricFamily("sealbus_bridge_refused", "bridge refusals, by reason", labels=[*labels, "reason"])
            for key, value in s.items():
                if key.startswith("refused_"):
                    r.add_metric([self._name, key.removeprefix("refused_")], float(value))
            yield r

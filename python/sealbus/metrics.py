"""Prometheus metrics for a router, through a collector the service registers.

sealbus starts no thread and opens no port of its own: with ``prometheus_client``
installed (``pip install 'sealbus[metrics]'``), register a collector with the
registry the service already exposes::

    from prometheus_client import REGISTRY
    REGISTRY.register(sealbus.metrics.RouterCollector(router, name="shop-a", bridge=bridge))

Each scrape reads the router's counters (and the bridge's) at that moment. From the
moment a collector is made, the router also counts, per event type and principal,
the events published, refused (by reason) and delivered, and keeps two latency
histograms: ``sealbus_publish_latency_seconds`` (a publish call until its receipts,
that is until the events are stored, or on disk for a durable router) and
``sealbus_delivery_latency_seconds`` (an event's ``time`` until a consumer polls it).
A router with no collector pays one attribute check per call for this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sealbus.errors import (
    Backpressure,
    Closed,
    InvalidEvent,
    LogError,
    PolicyDenied,
    SchemaError,
    SealbusError,
    SealError,
    TooLarge,
)

__all__ = ["RouterCollector", "refusal_reason"]

#: Latency buckets (seconds): from tens of microseconds (a queued publish) to seconds
#: (a consumer far behind).
BUCKETS = (0.000_025, 0.000_1, 0.000_25, 0.001, 0.002_5, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, float("inf"))

_REASONS: tuple[tuple[type[SealbusError], str], ...] = (
    (PolicyDenied, "policy"),
    (SchemaError, "schema"),
    (TooLarge, "too_large"),
    (InvalidEvent, "invalid"),
    (Backpressure, "backpressure"),
    (SealError, "seal"),
    (Closed, "closed"),
    (LogError, "log"),
)


def refusal_reason(exc: BaseException) -> str:
    """The reason label of a refused publish."""
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "other"


#: Router counters that count events, and the refusal reason each one stands for.
_REFUSALS = {"refused_policy": "policy", "refused_schema": "schema", "refused_backpressure": "backpressure"}


class RouterCollector:
    """A ``prometheus_client`` collector over :meth:`sealbus.Router.counters` and,
    when given, :meth:`sealbus.nats.Bridge.stats`."""

    def __init__(self, router: Any, *, name: str = "router", bridge: Any = None) -> None:
        self._router = router
        self._name = name
        self._bridge = bridge
        if router._tally is None:
            router._tally = Tally()
        self._tally: Tally = router._tally

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
        yield from self._tally.families(self._name)


class Tally:
    """A router's counts and latencies per event type and principal, kept in
    ``prometheus_client`` metrics of no registry (the collector yields them, labelled
    with its router's name). Thread-safe: producers and consumers call it from any
    thread."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        tp = ["type", "principal"]
        self.published = Counter("sealbus_events_published", "events published", tp, registry=None)
        self.refused = Counter(
            "sealbus_events_refused", "events refused at publish, by reason", [*tp, "reason"], registry=None
        )
        self.delivered = Counter("sealbus_events_delivered", "events polled by consumers", tp, registry=None)
        self.publish_latency = Histogram(
            "sealbus_publish_latency_seconds",
            "a publish call until its receipts (stored, on disk when durable)",
            tp,
            registry=None,
            buckets=BUCKETS,
        )
        self.delivery_latency = Histogram(
            "sealbus_delivery_latency_seconds",
            "an event's time until a consumer polls it",
            tp,
            registry=None,
            buckets=BUCKETS,
        )

    def publish(self, event_type: str, principal: str, count: int, seconds: float) -> None:
        self.published.labels(event_type, principal).inc(count)
        self.publish_latency.labels(event_type, principal).observe(seconds)

    def refuse(self, event_type: str, principal: str, exc: BaseException, count: int) -> None:
        self.refused.labels(event_type, principal, refusal_reason(exc)).inc(count)

    def deliver(self, principal: str, events: Iterable[tuple[str, str]], now: datetime) -> None:
        """Events polled by ``principal`` at ``now``: pairs of type and event time
        (RFC 3339, as :attr:`sealbus.Event.time`)."""
        counts: dict[str, int] = {}
        for event_type, stamp in events:
            counts[event_type] = counts.get(event_type, 0) + 1
            seconds = (now - datetime.fromisoformat(_micros(stamp))).total_seconds()
            self.delivery_latency.labels(event_type, principal).observe(max(seconds, 0.0))
        for event_type, n in counts.items():
            self.delivered.labels(event_type, principal).inc(n)

    def families(self, router: str) -> Iterator[Any]:
        """The metrics, each sample labelled ``router`` first."""
        for metric in (self.published, self.refused, self.delivered, self.publish_latency, self.delivery_latency):
            for family in metric.collect():
                family.samples = [s._replace(labels={"router": router, **s.labels}) for s in family.samples]
                yield family


def _micros(stamp: str) -> str:
    """An RFC 3339 time cut to microseconds, as ``datetime`` reads it."""
    head, dot, frac = stamp.rstrip("Z").partition(".")
    return f"{head}.{frac[:6]:0<6}+00:00" if dot else f"{head}+00:00"

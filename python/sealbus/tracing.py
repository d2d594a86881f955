"""OpenTelemetry spans for publish, deliver and bridge hops, parented from the events'
W3C ``traceparent``.

With ``opentelemetry-api`` installed (``pip install 'sealbus[otel]'``) and a tracer
provider configured (the global one, ``opentelemetry.trace.set_tracer_provider``, or
one given to :func:`use`), the router records:

- ``publish <type>`` (kind PRODUCER) around each publish call, a child of the
  ``traceparent`` the producer passed or else of its current span. When the producer
  passed none, the events carry this span's context as their ``traceparent``;
- ``deliver <type>`` (kind CONSUMER) when a consumer polls events, one span per
  ``traceparent`` and type in a poll, a child of that ``traceparent``;
- ``bridge export <type>`` and ``bridge import <type>`` for each run of events a bridge
  carries, children of the runs' ``traceparent``.

The ``traceparent`` attribute itself is never rewritten on the way: the consumer (on
this router or across a bridge) reads what the producer's publish wrote, so every
span of an event's journey shares its trace id.

Without OpenTelemetry, or with no provider configured, :func:`tracer` is None and the
router does nothing more than that one check per call. A global provider configured
after the first publish is noticed within a second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _PROPAGATOR: TraceContextTextMapPropagator | None = TraceContextTextMapPropagator()
except ImportError:  # the optional extra is not installed
    _trace = None  # type: ignore[assignment]
    _PROPAGATOR = None

__all__ = ["AVAILABLE", "tracer", "use"]

#: Whether OpenTelemetry's API is installed.
AVAILABLE = _PROPAGATOR is not None

_SCOPE = "sealbus"
_explicit: Any = None  # a Tracer from use(), or None to follow the global provider
_global: Any = None  # the global provider's Tracer, once one is configured
_next_look = 0.0  # when to look for a global provider again (time.monotonic())
_LOOK_EVERY = 1.0


def use(provider: TracerProvider | None) -> None:
    """Record sealbus's spans with ``provider`` rather than the global tracer
    provider (None: back to the global one)."""
    global _explicit
    if provider is not None and _trace is None:
        raise ImportError("OpenTelemetry is not installed: pip install 'sealbus[otel]'")
    _explicit = None if provider is None else provider.get_tracer(_SCOPE)


def tracer() -> Tracer | None:
    """The tracer sealbus records with, or None when tracing is off."""
    global _global, _next_look
    if _explicit is not None:
        return _explicit  # type: ignore[no-any-return]
    if _global is not None:
        return _global  # type: ignore[no-any-return]
    if _trace is None:
        return None
    # Asking OpenTelemetry for its global provider costs microseconds (it reads the
    # environment): with none configured, it is asked again a second later, not on
    # every publish.
    now = time.monotonic()
    if now < _next_look:
        return None
    _next_look = now + _LOOK_EVERY
    provider = _trace.get_tracer_provider()
    # The API's stand-ins until an SDK is configured: their spans record nothing.
    if isinstance(provider, (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)):
        return None
    _global = provider.get_tracer(_SCOPE)
    return _global  # type: ignore[no-any-return]


def _parent(traceparent: str | None) -> Any:
    """The context to parent a span from: the ``traceparent``'s, or the current one."""
    if traceparent is None or _PROPAGATOR is None:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def _attributes(event_type: str, operation: str, count: int, **more: str | int) -> dict[str, Any]:
    return {
        "messaging.system": "sealbus",
        "messaging.operation.type": operation,
        "messaging.destination.name": event_type,
        "messaging.batch.message_count": count,
        **more,
    }


def start_publish(
    t: Tracer, event_type: str, principal: str, count: int, traceparent: str | None
) -> tuple[Span, str | None]:
    """Start the span of one publish call; returns it and the ``traceparent`` the
    events are to carry when the producer gave none (else None)."""
    span = t.start_span(
        f"publish {event_type}",
        context=_parent(traceparent),
        kind=SpanKind.PRODUCER,
        attributes=_attributes(event_type, "publish", count, **{"sealbus.principal": principal}),
    )
    if traceparent is not None or _PROPAGATOR is None:
        return span, None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=_trace.set_span_in_context(span))
    return span, carrier.get("traceparent")


def end(span: Span, exc: BaseException | None = None) -> None:
    """End a span, marked as failed by ``exc`` when given."""
    if exc is not None:
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, type(exc).__name__)
    span.end()


def hops(
    t: Tracer,
    verb: str,
    counts: Mapping[tuple[str | None, str], int],
    attributes: Mapping[str, str],
    *,
    receive: bool,
) -> None:
    """One span ``<verb> <type>`` for each ``(traceparent, type)`` in ``counts``, a
    child of that ``traceparent``, counting its events: kind CONSUMER when the events
    are received, PRODUCER when they are sent on."""
    kind, operation = (SpanKind.CONSUMER, "receive") if receive else (SpanKind.PRODUCER, "send")
    for (traceparent, event_type), n in counts.items():
        span = t.start_span(
            f"{verb} {event_type}",
            context=_parent(traceparent),
            kind=kind,
            attributes=_attributes(event_type, operation, n, **attributes),
        )
        span.end()

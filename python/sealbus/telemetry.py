"""Where publishes and deliveries meet tracing (:mod:`sealbus.tracing`) and metrics
(:mod:`sealbus.metrics`): each call site asks :func:`watch` (or :func:`delivered`),
which costs two checks when neither is on."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sealbus import tracing

if TYPE_CHECKING:
    from sealbus._sealbus import DeliveryBatch, Message
    from sealbus.metrics import Tally

__all__ = ["Watch", "delivered", "delivered_batch", "watch"]


class Watch:
    """One publish call under a span and/or a latency clock."""

    __slots__ = ("_count", "_principal", "_span", "_start", "_tally", "_type")

    def __init__(self, span: Any, tally: Tally | None, event_type: str, principal: str, count: int) -> None:
        self._span = span
        self._tally = tally
        self._type = event_type
        self._principal = principal
        self._count = count
        self._start = time.perf_counter()

    def published(self) -> None:
        if self._tally is not None:
            self._tally.publish(self._type, self._principal, self._count, time.perf_counter() - self._start)
        if self._span is not None:
            tracing.end(self._span)

    def refused(self, exc: BaseException) -> None:
        if self._tally is not None:
            self._tally.refuse(self._type, self._principal, exc, self._count)
        if self._span is not None:
            tracing.end(self._span, exc)

    def settle(self, future: asyncio.Future[Any]) -> None:
        """Report an asynchronous publish once its future is done."""
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            # The await was cancelled, not the publish: its outcome is not known here.
            if self._span is not None:
                tracing.end(self._span)
            return
        exc = future.exception()
        if exc is None:
            self.published()
        else:
            self.refused(exc)


def watch(
    tally: Tally | None, principal: str, event_type: str, count: int, attrs: Mapping[str, str | None]
) -> tuple[Watch | None, Mapping[str, str | None]]:
    """A watch over one publish call, or None when neither tracing nor metrics are
    on; and the attributes to publish with (the span's ``traceparent`` added when
    the producer gave none)."""
    t = tracing.tracer()
    if t is None:
        return (None, attrs) if tally is None else (Watch(None, tally, event_type, principal, count), attrs)
    span, traceparent = tracing.start_publish(t, event_type, principal, count, attrs.get("traceparent"))
    if traceparent is not None:
        attrs = {**attrs, "traceparent": traceparent}
    return Watch(span, tally, event_type, principal, count), attrs


def delivered(tally: Tally | None, principal: str, subscription: str, msgs: Sequence[Message]) -> None:
    """Messages a consumer polled: their ``deliver`` spans and counts."""
    if not msgs:
        return
    t = tracing.tracer()
    if t is None and tally is None:
        return
    events = [m.event for m in msgs]
    if t is not None:
        tracing.hops(
            t,
            "deliver",
            Counter((e.traceparent, e.type) for e in events),
            {"sealbus.principal": principal, "messaging.consumer.group.name": subscription},
            receive=True,
        )
    if tally is not None:
        tally.deliver(principal, [(e.type, e.time) for e in events], datetime.now(UTC))


def delivered_batch(tally: Tally | None, principal: str, subscription: str, batch: DeliveryBatch) -> None:
    """:func:`delivered` for a :class:`~sealbus.DeliveryBatch` (its messages are
    made one by one only when tracing or metrics are on)."""
    if len(batch) and (tally is not None or tracing.tracer() is not None):
        delivered(tally, principal, subscription, [batch[i] for i in range(len(batch))])

"""Consumers: poll, iterate (sync or async), or hand messages to a handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from sealbus import aio, telemetry
from sealbus._args import items
from sealbus._sealbus import DeliveryBatch, Event, Message, SubscriptionCore
from sealbus.e2e import ConsumerKeyPair
from sealbus.endtoend import E2E_CONTENT_TYPE, Batch, OpenedMessage, Validator, open_batch, open_end_to_end
from sealbus.errors import Closed

if TYPE_CHECKING:
    from sealbus.router import Router

log = logging.getLogger("sealbus")


#: What a poll hands out, and ``ack``/``nack`` take back.
_DELIVERED = (Message, OpenedMessage)


def _none(found: list[Any] | Batch) -> bool:
    return len(found) == 0


class Subscription:
    """A consumer's subscription: a bounded queue in the Rust core.

    Delivery is at-least-once: a message stays owed until :meth:`Message.ack`; a
    message not acked within ``ack_timeout`` seconds, or nacked, is delivered again,
    up to ``max_deliveries`` times, then moved to the dead-letter queue.
    """

    def __init__(
        self,
        core: SubscriptionCore,
        keypair: ConsumerKeyPair | None = None,
        validate: Validator | None = None,
        router: Router | None = None,
    ) -> None:
        self._core = core
        self._router = router
        self._keypair = keypair
        self._validate = validate
        self._handlers: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def principal(self) -> str:
        return self._core.principal

    @property
    def types(self) -> list[str]:
        return self._core.types

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, principal={self.principal!r}, types={self.types!r})"

    def poll(self, max_messages: int = 512, timeout: float | None = 0.0) -> list[Message]:
        """Up to ``max_messages`` messages, waiting up to ``timeout`` seconds for the
        first (``None`` waits until one arrives). The GIL is released while waiting.

        Events sealed end to end are opened with this consumer's key pair; one it
        cannot open raises :class:`~sealbus.IntegrityError` (or
        :class:`~sealbus.KeyNotFound` when it is not a recipient) from ``msg.data``;
        one whose plaintext does not fit its schema raises
        :class:`~sealbus.ValidationError` there."""
        return self._finish(self._core.poll(max_messages, timeout))

    def _delivered(self, msgs: list[Message]) -> list[Message]:
        """Spans and metrics for what was polled (see :mod:`sealbus.telemetry`)."""
        if msgs:
            tally = None if self._router is None else self._router._tally
            telemetry.delivered(tally, self._core.principal, self._core.name, msgs)
        return msgs

    def _delivered_batch(self, batch: DeliveryBatch) -> DeliveryBatch:
        if len(batch):
            tally = None if self._router is None else self._router._tally
            telemetry.delivered_batch(tally, self._core.principal, self._core.name, batch)
        return batch

    def _finish(self, msgs: list[Message]) -> list[Message]:
        """Open what was sealed end to end for this consumer (see :meth:`poll`)."""
        self._delivered(msgs)
        if any(m.event.datacontenttype == E2E_CONTENT_TYPE for m in msgs):
            return open_end_to_end(msgs, self._keypair, self.principal, self._validate)
        return msgs

    def poll_batch(self, max_messages: int = 4096, timeout: float | None = 0.0) -> Batch:
        """Like :meth:`poll`, but one :class:`DeliveryBatch`: the events' data in one
        buffer plus offsets, acked or nacked together with ``batch.ack()``. The fast
        path when a consumer handles many events per call.

        Events sealed end to end are opened and validated as :meth:`poll` opens them
        (an :class:`~sealbus.endtoend.OpenedBatch` then holds their plaintext); their
        ciphertext is never handed out as data. While the caller handles that batch,
        the end-to-end events ready next (up to four batches of this size, and 8 MiB
        of frames) are opened ahead on pool threads; nothing is taken from the queue
        for it, and a later call uses that work only if it takes exactly those events."""
        return self._finish_batch(self._core.poll_batch(max_messages, timeout))

    def _finish_batch(self, batch: DeliveryBatch) -> Batch:
        """Open what was sealed end to end for this consumer (see :meth:`poll_batch`)."""
        self._delivered_batch(batch)
        return open_batch(batch, self._keypair, self.principal, self._validate)

    def ack(self, messages: list[Message]) -> int:
        """Acknowledge many messages in one call; returns how many were outstanding."""
        return self._core.ack([m.tag for m in items(messages, "messages", _DELIVERED)])

    def nack(self, messages: list[Message]) -> int:
        """Refuse many messages in one call (redelivery or dead letter)."""
        return self._core.nack([m.tag for m in items(messages, "messages", _DELIVERED)])

    def stats(self) -> dict[str, int]:
        """Queue depth and counters (delivered, acked, dropped, dead_lettered, ...)."""
        return self._core.stats()

    def dead_letters(self, max: int = 1000, remove: bool = False) -> list[tuple[Event, int, str]]:
        """Events that exhausted ``max_deliveries``: ``(event, attempts, reason)``."""
        return self._core.dead_letters(max, remove)

    def __iter__(self) -> Iterator[Message]:
        """Messages as they arrive, until the subscription is closed."""
        while True:
            try:
                batch = self._core.poll(256, 0.5)
            except Closed:
                return
            yield from self._delivered(batch)

    async def poll_async(self, max_messages: int = 512, timeout: float | None = None) -> list[Message]:
        """:meth:`poll` for asyncio: waits on the loop (no thread) up to ``timeout``
        seconds (None: until a message arrives) and returns the messages, or an empty
        list when the time is up. Raises :class:`~sealbus.Closed` once closed."""
        return await aio.wait_for(lambda: self.poll(max_messages, 0.0), _none, [self._core], timeout)

    async def poll_batch_async(self, max_messages: int = 4096, timeout: float | None = None) -> Batch:
        """:meth:`poll_batch` for asyncio, waiting as :meth:`poll_async` does (and
        opening end-to-end events as :meth:`poll_batch` does)."""
        return await aio.wait_for(lambda: self.poll_batch(max_messages, 0.0), _none, [self._core], timeout)

    async def __aiter__(self) -> AsyncIterator[Message]:
        """``async for msg in sub``: messages as they arrive, until the subscription
        is closed. Waits on the loop, woken by the router: no thread, no polling."""
        while True:
            try:
                batch = await self.poll_async(256, None)
            except Closed:
                return
            for msg in batch:
                yield msg

    def handle(
        self,
        handler: Callable[[Message], Any],
        *,
        batch: int = 256,
        auto_ack: bool = True,
    ) -> threading.Thread:
        """Run ``handler(msg)`` for each message on a background thread. With
        ``auto_ack`` a message is acked when the handler returns and nacked when it
        raises (the exception is logged). Stops when the subscription closes."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    msgs = self._core.poll(batch, 0.2)
                except Closed:
                    return
                for msg in self._delivered(msgs):
                    try:
                        handler(msg)
                    except Exception:
                        log.exception("handler for subscription %s failed; message nacked", self.name)
                        if auto_ack:
                            msg.nack()
                    else:
                        if auto_ack:
                            msg.ack()

        t = threading.Thread(target=run, name=f"sealbus-handler-{self.name}", daemon=True)
        t.start()
        self._handlers.append(t)
        return t

    @property
    def durable(self) -> bool:
        return self._core.durable

    def close(self, *, forget: bool = False) -> None:
        """Unsubscribe and stop handlers. A durable subscription keeps its cursor (the
        consumer is offline and still owed every event) unless ``forget``; undelivered
        messages of an ephemeral one are dropped."""
        self._stop.set()
        self._core.close(forget)
        for t in self._handlers:
            if t is not threading.current_thread():
                t.join(timeout=5)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""One thread, many subscriptions: wait on several at once, as ``select``/``epoll``
do for sockets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sealbus import aio
from sealbus._args import items
from sealbus._sealbus import Message, SelectorCore, SubscriptionCore
from sealbus.endtoend import Batch
from sealbus.errors import Closed
from sealbus.subscription import Subscription


def _none(found: list[Any]) -> bool:
    return not found


class Selector:
    """Waits on several subscriptions of one router at once.

    A service with several subscriptions need not spend a thread on each: one thread
    sleeps on the selector and wakes once for news on any of them, and a single poll
    returns what every subscription has ready. Each subscription keeps its own
    queue, pattern, permissions, acks and redeliveries; only the waiting is shared.

    >>> with Selector([orders, payments]) as sel:          # doctest: +SKIP
    ...     for sub, batch in sel.poll_batch(timeout=1.0):
    ...         handle(sub.name, batch)
    ...         batch.ack()

    ``busy_poll`` (seconds): how long a poll that finds nothing keeps looking, yielding
    the CPU in between, before it sleeps. It buys wake-up latency with CPU time, as
    ``Router.subscribe(..., busy_poll=...)`` does for one subscription.

    A closed subscription is passed over; once all are closed, polls raise
    :class:`~sealbus.Closed`.
    """

    def __init__(self, subscriptions: Iterable[Subscription], *, busy_poll: float = 0.0) -> None:
        self._subs: list[Subscription] = items(subscriptions, "subscriptions", Subscription)
        self._core: SelectorCore | None = SelectorCore([s._core for s in self._subs], busy_poll)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)

    def __len__(self) -> int:
        return len(self._subs)

    def __repr__(self) -> str:
        return f"Selector({[s.name for s in self._subs]!r})"

    def poll_batch(self, max_messages: int = 4096, timeout: float | None = 0.0) -> list[tuple[Subscription, Batch]]:
        """For each subscription with events, up to ``max_messages`` of them as one
        :class:`~sealbus.DeliveryBatch`, waiting up to ``timeout`` seconds (``None``:
        until any arrives) with the GIL released. Only subscriptions that have events
        are listed, in the selector's order. End-to-end events are opened as
        :meth:`Subscription.poll_batch` opens them."""
        return [
            (self._subs[i], self._subs[i]._finish_batch(b)) for i, b in self._live().poll_batch(max_messages, timeout)
        ]

    def poll(self, max_messages: int = 512, timeout: float | None = 0.0) -> list[tuple[Subscription, list[Message]]]:
        """Like :meth:`poll_batch`, with a :class:`~sealbus.Message` per event, opened
        as :meth:`Subscription.poll` opens them (end-to-end seals included)."""
        return [(self._subs[i], self._subs[i]._finish(msgs)) for i, msgs in self._live().poll(max_messages, timeout)]

    async def poll_batch_async(
        self, max_messages: int = 4096, timeout: float | None = None
    ) -> list[tuple[Subscription, Batch]]:
        """:meth:`poll_batch` for asyncio: waits on the loop (no thread) up to
        ``timeout`` seconds (None: until any subscription has events)."""
        return await aio.wait_for(lambda: self.poll_batch(max_messages, 0.0), _none, self._cores(), timeout)

    async def poll_async(
        self, max_messages: int = 512, timeout: float | None = None
    ) -> list[tuple[Subscription, list[Message]]]:
        """:meth:`poll` for asyncio, waiting as :meth:`poll_batch_async` does."""
        return await aio.wait_for(lambda: self.poll(max_messages, 0.0), _none, self._cores(), timeout)

    def _cores(self) -> list[SubscriptionCore]:
        self._live()
        return [s._core for s in self._subs]

    def close(self) -> None:
        """Stop watching (the subscriptions stay open)."""
        self._core = None

    def _live(self) -> SelectorCore:
        if self._core is None:
            raise Closed("closed: the selector", what="selector")
        return self._core

    def __enter__(self) -> Selector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

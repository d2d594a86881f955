"""JetStream publishes with many in flight, answered through one reply subscription.

nats-py's ``JetStreamContext.publish`` is a request: a task and a timer per message,
a visible share of the export's work when every event is a message of its own. Here a
publish is a plain NATS publish whose reply subject carries a token; one subscription
takes every ack, and one timer fails the publishes that were not acked in time (a
reply lost to a reconnect never comes), oldest first. Only nats-py's public API is
used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import nats.errors
import nats.js.errors

__all__ = ["PublishTimeout", "Publisher"]

_NO_RESPONDERS = "503"


class PublishTimeout(nats.errors.TimeoutError):
    """JetStream did not ack a publish in time; it may or may not be stored."""

    def __str__(self) -> str:
        return f"nats: timeout: {self.args[0]}" if self.args else super().__str__()


class Publisher:
    """Publish to JetStream with up to ``max_in_flight`` awaiting their acks.

    ``publish`` waits for room, sends, and returns a future that JetStream's ack
    resolves (to the stream sequence), or fails with its error, ``PublishTimeout``
    after ``timeout`` seconds, or the connection's error. A token is never reused, so
    a late ack cannot settle another publish.
    """

    def __init__(self, nc: Any, max_in_flight: int, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout
        self._room = asyncio.Semaphore(max_in_flight)
        # token -> (future, deadline); insertion order is deadline order.
        self._pending: dict[str, tuple[asyncio.Future[int], float]] = {}
        self._prefix = ""
        self._next = 0
        self._sub: Any = None
        self._expiry: asyncio.Task[None] | None = None

    async def start(self) -> Publisher:
        inbox = self._nc.new_inbox()
        self._prefix = inbox + "."
        self._sub = await self._nc.subscribe(inbox + ".*", cb=self._acked)
        self._expiry = asyncio.create_task(self._expire())
        return self

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        for fut, _ in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(nats.errors.ConnectionClosedError())
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def publish(self, subject: str, body: bytes, headers: dict[str, str] | None = None) -> asyncio.Future[int]:
        await self._room.acquire()
        loop = asyncio.get_running_loop()
        self._next += 1
        token = str(self._next)
        fut: asyncio.Future[int] = loop.create_future()
        self._pending[token] = (fut, loop.time() + self._timeout)
        fut.add_done_callback(lambda _: self._settled(token))
        try:
            await self._nc.publish(subject, body, reply=self._prefix + token, headers=headers)
        except Exception as exc:  # closed, draining, or the reconnect buffer is full
            if not fut.done():
                fut.set_exception(exc)
            self._settled(token)  # now, not a loop turn later: the caller sees it done
        return fut

    def _settled(self, token: str) -> None:
        if self._pending.pop(token, None) is not None:
            self._room.release()

    async def _acked(self, msg: Any) -> None:
        entry = self._pending.get(msg.subject[len(self._prefix) :])
        if entry is None or entry[0].done():
            return  # late, after its deadline
        fut = entry[0]
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            fut.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            reply = json.loads(msg.data)
            if "error" in reply:
                # ``from_error`` raises the error's own class (BadRequestError, ...).
                nats.js.errors.APIError.from_error(reply["error"])
            fut.set_result(int(reply["seq"]))
        except nats.js.errors.Error as exc:
            fut.set_exception(exc)
        except (ValueError, KeyError, TypeError) as exc:
            fut.set_exception(nats.js.errors.Error(f"unreadable publish ack: {exc}"))

    async def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        tick = min(self._timeout / 4, 0.25)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            late = []
            for fut, deadline in self._pending.values():
                if deadline > now:
                    break
                late.append(fut)
            for fut in late:
                if not fut.done():
                    fut.set_exception(PublishTimeout(f"no ack from JetStream in {self._timeout:g} s"))

"""asyncio: publish and consume on an event loop without blocking it.

Producers. ``await producer.publish_async(...)`` hands the event to the router's
committer for the running loop (one background thread in the Rust core per router
and loop) and awaits its receipt. The committer takes everything the loop's
coroutines submitted since its last commit and stores it as one batch (validated per
publish, sealed, appended, one fsync), then wakes the loop once through an eventfd
the loop watches (``loop.add_reader``); the receipts of the whole commit are handed
out in that one wake-up. The loop's thread never waits for the disk.

Consumers. ``await sub.poll_async(...)``, ``async for msg in sub`` and
``await selector.poll_async(...)`` look at their subscriptions without waiting; when
there is nothing, they register a one-shot watch and await a future. The first news
on a watched subscription (an event, a close) writes one eventfd per loop, the loop
wakes and resolves the future. No thread waits on the loop's behalf.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from sealbus._args import seconds
from sealbus._sealbus import CommitterCore, LoopBell, Receipts, RouterCore, SubscriptionCore
from sealbus.codec import BatchEncoder, encode_batch
from sealbus.errors import Backpressure, SealbusError

T = TypeVar("T")

#: Publishes whose receipts one turn of the loop hands out (see ``_resolve``): each
#: resumes a coroutine that runs until its next ``await`` in the following turn, so
#: this bounds how long a turn holds the loop (at 8, about 0.3 ms on 2 vCPUs).
RESOLVE_SLICE = 8

#: Outcomes whose audit notes make one group at most: a commit's publishes are
#: audited together once its last receipt is out, or every this many under a load
#: that never lets the outcomes run dry.
AUDIT_GROUP = 1024

#: Events a ``publish_many_async`` encodes between two turns of the loop: JSON
#: encoding runs on the loop's thread, and a slice this size takes well under 1 ms.
ENCODE_SLICE = 512


class Auditor(Protocol):
    """Records a producer's publishes in the router's audit trail."""

    def published(self, event_type: str, kind: str, ids: list[str], nbytes: int, version: int | None) -> None: ...

    def refused(self, event_type: str, exc: SealbusError, count: int) -> None: ...


class AuditNote(NamedTuple):
    """What the audit trail is told of one submitted publish once its outcome is in."""

    auditor: Auditor
    event_type: str
    kind: str
    events: int
    nbytes: int


class _Stored:
    """The receipts of one producer, type, schema version and data kind within one
    commit: they make one audit entry, not one each."""

    __slots__ = ("ids", "nbytes")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.nbytes = 0


def _audit(notes: list[tuple[AuditNote, Any]]) -> None:
    stored: dict[tuple[Auditor, str, str, int | None], _Stored] = {}
    for note, outcome in notes:
        if isinstance(outcome, SealbusError):
            note.auditor.refused(note.event_type, outcome, note.events)
            continue
        if isinstance(outcome, BaseException):
            continue
        many = isinstance(outcome, Receipts)
        version = (outcome[0].schema_version if len(outcome) else None) if many else outcome.schema_version
        key = (note.auditor, note.event_type, note.kind, version)
        group = stored.get(key)
        if group is None:
            group = stored[key] = _Stored()
        if many:
            group.ids.extend(outcome.ids)
        else:
            group.ids.append(outcome.id)
        group.nbytes += note.nbytes
    for (auditor, event_type, kind, version), group in stored.items():
        auditor.published(event_type, kind, group.ids, group.nbytes, version)


class _Publisher:
    """One router's committer for one event loop, and the futures awaiting it (in
    submission order, the order its outcomes come back in)."""

    def __init__(self, core: RouterCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core = CommitterCore(core)
        self.waiting: deque[tuple[asyncio.Future[Any], Sequence[Any], AuditNote | None]] = deque()
        self.outcomes: deque[Any] = deque()
        # Audit notes of the outcomes handed out since the last commit was drained:
        # one entry per producer and type for each commit, however it is sliced.
        self.notes: list[tuple[AuditNote, Any]] = []
        self.stopped = False
        self.flushing = False
        self.resolving = False
        self._loop = weakref.ref(loop)
        loop.add_reader(self.core.fileno(), self._collect)

    def _collect(self) -> None:
        """The loop's reader callback: one call per commit, however many events."""
        self.outcomes.extend(self.core.take())
        self._resolve()

    def _resolve(self) -> None:
        """Hand out up to ``RESOLVE_SLICE`` outcomes, and the rest in later turns of
        the loop: each resolved future resumes its coroutine in the next turn, and a
        turn that resumes hundreds of them makes the loop late for everything else
        (its timers are only looked at between turns)."""
        waiting, outcomes, notes = self.waiting, self.outcomes, self.notes
        for _ in range(min(len(outcomes), RESOLVE_SLICE)):
            outcome = outcomes.popleft()
            fut, originals, note = waiting.popleft()
            if note is not None:
                notes.append((note, outcome))
            if fut.done():
                # Cancelled: the event was handed over and is published (or refused)
                # all the same; only the wait for its receipt ended.
                continue
            if isinstance(outcome, BaseException):
                if isinstance(outcome, Backpressure):
                    # As publish does: the caller gets back what was not queued.
                    outcome.events = list(originals[outcome.accepted :])
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
        if notes and (not outcomes or len(notes) >= AUDIT_GROUP):
            self.notes = []
            _audit(notes)
        if outcomes:
            loop = self._loop()
            if loop is not None and not self.resolving:
                self.resolving = True
                loop.call_soon(self._resolve_rest)
        elif self.stopped and not waiting:
            self._detach()

    def _resolve_rest(self) -> None:
        self.resolving = False
        self._resolve()

    def flush(self) -> None:
        """Called once per turn of the loop that submitted: the committer takes the
        turn's publishes together (waking it per publish cost a context switch each)."""
        self.flushing = False
        self.core.flush()

    def stop(self) -> None:
        """Refuse new submissions; the reader stays until the last outcome is in."""
        self.stopped = True
        self.core.stop()
        if not self.waiting:
            self._detach()

    def _detach(self) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        fd = self.core.fileno()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.remove_reader(fd)
        else:
            loop.call_soon_threadsafe(loop.remove_reader, fd)


# router (the public Router object) -> loop -> its publisher.
_PUBLISHERS: weakref.WeakKeyDictionary[object, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Publisher]] = (
    weakref.WeakKeyDictionary()
)


def _dead() -> None:
    return None


# The last (router, loop) that published and its publisher, held weakly: most
# processes have one of each, and two weak-dictionary lookups per publish cost more
# than the rest of a submit.
_last: tuple[Callable[[], object], Callable[[], object], Callable[[], _Publisher | None]] = (_dead, _dead, _dead)


def _publisher(router: object, core: RouterCore, loop: asyncio.AbstractEventLoop) -> _Publisher:
    per_loop = _PUBLISHERS.get(router)
    if per_loop is None:
        per_loop = _PUBLISHERS[router] = weakref.WeakKeyDictionary()
    pub = per_loop.get(loop)
    if pub is None:
        pub = per_loop[loop] = _Publisher(core, loop)
    return pub


def submit(
    router: object,
    core: RouterCore,
    principal: str,
    token: bytes,
    event_type: str,
    kind: str,
    buffer: bytes,
    offsets: list[int],
    originals: Sequence[Any],
    version: int | None,
    timeout: float | None,
    attrs: Mapping[str, str | None],
    ids: list[str] | None,
    single: bool,
    note: AuditNote | None = None,
) -> asyncio.Future[Any]:
    """Queue a publish for the running loop's next group commit; the future resolves
    to its ``Receipt`` (``single``) or ``Receipts``, or raises why it was refused.
    ``note``: what to tell the audit trail once the outcome is in."""
    global _last
    loop = asyncio.get_running_loop()
    last_router, last_loop, last_pub = _last
    pub = last_pub()
    if last_router() is not router or last_loop() is not loop or pub is None or pub.stopped:
        pub = _publisher(router, core, loop)
        _last = (weakref.ref(router), weakref.ref(loop), weakref.ref(pub))
    fut: asyncio.Future[Any] = loop.create_future()
    pub.core.submit(
        principal,
        token,
        event_type,
        buffer,
        offsets,
        kind,
        version,
        dict(attrs) if attrs else None,
        timeout,
        ids,
        single,
    )
    pub.waiting.append((fut, originals, note))
    if not pub.flushing:
        pub.flushing = True
        loop.call_soon(pub.flush)
    return fut


def close_publishers(router: object) -> None:
    """The router is closing: its loops' committers take no more submissions (a
    later ``publish_async`` gets a new one, which says what a publish would)."""
    per_loop = _PUBLISHERS.pop(router, None)
    for pub in list(per_loop.values()) if per_loop is not None else ():
        pub.stop()


async def encode_batch_async(batch: Sequence[Any]) -> tuple[str, bytes, list[int]]:
    """:func:`sealbus.codec.encode_batch`, letting the loop run other callbacks
    every ``ENCODE_SLICE`` events: a large batch does not hold the loop."""
    if len(batch) <= ENCODE_SLICE:
        return encode_batch(batch)
    enc = BatchEncoder()
    for i, item in enumerate(batch):
        if i and i % ENCODE_SLICE == 0:
            await asyncio.sleep(0)
        enc.add(i, item)
    return enc.result()


# ---- consumers -------------------------------------------------------------------------


class _Waiters:
    """One event loop's waits on subscriptions: one eventfd registered with the loop,
    and the future of each registered watch by its token."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.bell = LoopBell()
        self.futures: dict[int, asyncio.Future[None]] = {}
        self.next_token = 0
        loop.add_reader(self.bell.fileno(), self._wake)

    def _wake(self) -> None:
        for token in self.bell.take():
            fut = self.futures.pop(token, None)
            if fut is not None and not fut.done():
                fut.set_result(None)


_WAITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiters] = weakref.WeakKeyDictionary()


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def wait_for(
    look: Callable[[], T],
    empty: Callable[[T], bool],
    cores: list[SubscriptionCore],
    timeout: float | None,
) -> T:
    """``look()`` (a poll that does not wait) until it finds something, awaiting news
    on ``cores`` in between, for up to ``timeout`` seconds (None: until something
    arrives). A closed subscription makes ``look`` raise, which ends the wait."""
    if timeout is not None:
        timeout = seconds(timeout, "timeout")
    got = look()
    if not empty(got) or (timeout is not None and timeout <= 0):
        return got
    loop = asyncio.get_running_loop()
    waiters = _WAITERS.get(loop)
    if waiters is None:
        waiters = _WAITERS[loop] = _Waiters(loop)
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        token = waiters.next_token
        waiters.next_token += 1
        fut: asyncio.Future[None] = loop.create_future()
        waiters.futures[token] = fut
        watch = waiters.bell.watch(cores, token)
        try:
            # Look again now the watch is armed: news from here on posts the token.
            got = look()
            if not empty(got):
                return got
            wait = waiters.bell.redelivery_in(cores)
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return got
                wait = left if wait is None else min(wait, left)
            if wait is None:
                await fut
            else:
                timer = loop.call_later(wait, _expire, fut)
                try:
                    await fut
                finally:
                    timer.cancel()
        finally:
            watch.close()
            waiters.futures.pop(token, None)

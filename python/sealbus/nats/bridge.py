"""Routers joined through NATS JetStream: export through the log, import with every check.

Export is a transactional outbox. The bridge reads its router's own log as a durable
consumer (so an event is exported only once it is stored, and every stored event is
exported, however long NATS is away), woken by the log's commit, seals each batch
under the deployment's transit key ring, signs it with the router's Ed25519 identity,
and publishes it to ``sealbus.<type>`` with many publishes in flight, while the next
batch is read and sealed. The log's cursor moves only once JetStream has acknowledged
the batch, in order. All of this runs in the core, on a thread and a NATS connection
of its own (the NATS maintainers' Rust client), with no Python step per event.

Import is a JetStream durable push consumer. Each message's signature is checked
against ``trust``, its frames are opened, and its events are published into the local
router as the principal ``<router name>/<principal>``: the local policy, schema and
backpressure apply as to any local producer. Opening and committing are two stages
on threads of their own: a delivery is checked and opened while the one before it
waits for its fsync, and the deliveries waiting then go into the local log as one
commit (one fsync), however their events' producers and attributes vary. A message
is acknowledged to JetStream only once its events are durable in the local log, and
an event id seen before is not stored again (a redelivery after a crash between the
two).

An end-to-end event crosses with the frame its producer sealed as its data, inside
the transit seal: the bridges never hold a key that opens it. Imported, it is stored as
``<router name>/<principal>`` like any remote event, and its consumers open it bound to
``<principal>``, the producer as its own router named it, which only that router's
signature can vouch for (docs/FORMAT.md, *Across routers*).

The bridge runs its own asyncio loop on one thread; a local publish never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sealbus import tracing
from sealbus._args import blob, count, names, path, seconds, text, wrong_type
from sealbus._sealbus import Exporter, publish_runs
from sealbus.endtoend import E2E_CONTENT_TYPE
from sealbus.errors import (
    Backpressure,
    IntegrityError,
    InvalidArgument,
    KeyNotFound,
    PolicyDenied,
    SchemaError,
    SealbusError,
)
from sealbus.keys import KeyRing
from sealbus.nats.identity import Identity
from sealbus.nats.wire import Runs, SignatureRefused, WireError, decode_runs
from sealbus.principal import Principal
from sealbus.router import Router

__all__ = ["Bridge", "BridgeError"]

STREAM = "SEALBUS"
_log = logging.getLogger("sealbus")
_MAX_EVENTS_PER_MESSAGE = 256
_MAX_BYTES_PER_MESSAGE = 512 * 1024
_IN_FLIGHT = 64
_FETCH = 64
# Events per poll of the export log: four polls in the pipeline fill its window.
_POLL = 2048
_EXPORT_WINDOW = 4 * _POLL
# A delivery of at most this many bytes is opened on the loop when it can be in order.
_OPEN_ON_LOOP = 16 * 1024
_SEEN_IDS = 1_000_000
# Events per local commit of the import, and message bytes per delivery to the opening
# stage: batches of a few megabytes reuse the allocator's memory, where a backlog taken
# whole (``fetch_batch`` messages of up to 256 events each) made every commit fault in
# fresh pages for its buffers.
_COMMIT_EVENTS = 2048
_DELIVERY_BYTES = 2 * 1024 * 1024
_LOCAL_BLOCK_TIMEOUT = 1.0


class BridgeError(SealbusError):
    """The bridge is misconfigured or could not start (``reason``)."""


class _LocalRun:
    """Events bound for one local publish: they share type, producer, schema version
    and attributes (``key``). Their data is kept as chunks of the messages' buffers."""

    __slots__ = ("chunks", "ids", "key", "offsets", "owners", "times")

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.ids: list[str] = []
        self.times: list[str] = []
        self.chunks: list[bytes] = []
        self.offsets = [0]
        self.owners: set[int] = set()

    def add(self, cols: Runs, start: int, end: int) -> None:
        """Events ``start..end`` of a message."""
        offsets = cols.offsets
        base = self.offsets[-1] - offsets[start]
        self.chunks.append(cols.data[offsets[start] : offsets[end]])
        self.offsets.extend(o + base for o in offsets[start + 1 : end + 1])
        self.ids.extend(cols.ids[start:end])
        self.times.extend(cols.times[start:end])


def _join(threads: Iterable[threading.Thread]) -> None:
    for t in threads:
        t.join(30)


class _Seen:
    """Events imported lately, as (producer, id) pairs: a redelivered JetStream message
    is recognised by its events. The producer is the local name of the remote one
    (``<router>/<principal>``): CloudEvents makes an id unique only within its source,
    so an event of one producer never shadows another's that carries the same id.
    Two generations of sets, the older dropped whole once the newer holds
    ``capacity`` pairs, so that checking and recording a run of ids are single C calls
    (``isdisjoint``, ``update`` over a ``zip``) rather than a Python step per event;
    at least the last ``capacity`` pairs are remembered. Filled at start from the
    local log's recent imports."""

    def __init__(self, capacity: int) -> None:
        self._new: set[tuple[str, str]] = set()
        self._old: set[tuple[str, str]] = set()
        self._generation = max(1, capacity)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._new or key in self._old

    def any_of(self, producer: str, event_ids: Sequence[str]) -> bool:
        """Whether any of ``event_ids`` of ``producer`` was seen."""
        return not (
            self._new.isdisjoint(zip(repeat(producer), event_ids))
            and self._old.isdisjoint(zip(repeat(producer), event_ids))
        )

    def add(self, producer: str, event_id: str) -> None:
        self._new.add((producer, event_id))
        self._turn()

    def add_all(self, producer: str, event_ids: Iterable[str]) -> None:
        self._new.update(zip(repeat(producer), event_ids))
        self._turn()

    def _turn(self) -> None:
        if len(self._new) >= self._generation:
            self._old, self._new = self._new, set()


class Bridge:
    """Join ``router`` to other routers through NATS JetStream.

    ``name`` is this router's name across the deployment; ``identity`` its Ed25519
    key pair (:class:`Identity`); ``transit_keys`` the key ring (or key file) that
    seals events on the wire, shared by the deployment's routers. ``exports`` are the
    event types (globs) this router sends out, ``imports`` those it takes in, and
    ``trust`` maps each router name it accepts events from to that router's public
    key. Remote producers act locally as ``<router>/<principal>``: grant them with
    ``router.policy.allow_publish("shop-a/checkout", "orders.*")``.

    ``servers`` is a NATS URL or a list of them (``nats://`` or ``tls://``); ``tls_ca``
    names a CA file to verify the server with, ``creds`` a NATS credentials file and
    ``nkey_seed`` an NKey seed file. ``stream_replicas`` is the replication of the
    ``SEALBUS`` stream when the bridge creates it (3 in production clusters).
    ``max_in_flight`` bounds the exports awaiting JetStream's acknowledgement,
    ``fetch_batch`` the messages an import takes at a time (at most four batches are
    unacknowledged), and ``publish_timeout`` how long an export waits for its
    acknowledgement before it is sent again.

    >>> with Bridge(router, "nats://127.0.0.1:4222", name="shop-a", identity=ident,
    ...             transit_keys="/etc/shop/transit.keys", exports=["orders.*"]) as b:  # doctest: +SKIP
    ...     b.flush(5.0)
    """

    #: Whether the export records each message's stage times, for the bench's
    #: ``--stages`` (:mod:`sealbus.bench.bridge_stages`).
    _export_stamps = False

    def __init__(
        self,
        router: Router,
        servers: str | Sequence[str],
        *,
        name: str,
        identity: Identity,
        transit_keys: KeyRing | str | os.PathLike[str],
        exports: str | Iterable[str] = (),
        imports: str | Iterable[str] = (),
        trust: Mapping[str, bytes] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        creds: str | os.PathLike[str] | None = None,
        nkey_seed: str | os.PathLike[str] | None = None,
        stream_replicas: int = 1,
        max_in_flight: int = _IN_FLIGHT,
        fetch_batch: int = _FETCH,
        publish_timeout: float = 5.0,
    ) -> None:
        name = text(name, "name")
        if not name or "/" in name or "." in name or any(c.isspace() for c in name):
            raise InvalidArgument(
                f"invalid argument: name: {name!r} is not a router name (no '/', '.' or spaces)",
                name="name",
                reason="router name",
            )
        if not isinstance(identity, Identity):
            raise InvalidArgument("invalid argument: identity: not an Identity", name="identity", reason="type")
        if not isinstance(router, Router):
            raise wrong_type("router", "a Router", router)
        max_in_flight = count(max_in_flight, "max_in_flight", 1)
        fetch_batch = count(fetch_batch, "fetch_batch", 1)
        self.router = router
        self.name = name
        self.identity = identity
        self.servers = names(servers, "servers")
        self.transit = (
            transit_keys
            if isinstance(transit_keys, KeyRing)
            else KeyRing.load_or_create(path(transit_keys, "transit_keys"))
        )
        self.exports = names(exports, "exports")
        self.imports = names(imports, "imports")
        if trust is not None and not isinstance(trust, Mapping):
            raise wrong_type("trust", "a mapping of router names to public keys", trust)
        self.trust = {text(k, "trust"): blob(v, "trust") for k, v in (trust or {}).items()}
        self._tls_ca = None if tls_ca is None else path(tls_ca, "tls_ca")
        self._creds = None if creds is None else path(creds, "creds")
        self._nkey_seed = None if nkey_seed is None else path(nkey_seed, "nkey_seed")
        self._replicas = count(stream_replicas, "stream_replicas", 1)
        self._max_in_flight = max_in_flight
        self._fetch = fetch_batch
        self._publish_timeout = seconds(publish_timeout, "publish_timeout")
        if self.exports and not router.durable:
            raise BridgeError(
                "bridge error: exports need a durable router (the log is the outbox)", reason="not durable"
            )
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "exported",
                "export_messages",
                "export_retries",
                "export_skipped",
                "imported",
                "import_messages",
                "duplicates",
                "refused_signature",
                "refused_malformed",
                "refused_integrity",
                "refused_policy",
                "refused_schema",
                "refused_other",
                "reconnects",
            ),
            0,
        )
        self._lock = threading.Lock()
        self._remote: dict[str, Principal] = {}
        self._seen = _Seen(_SEEN_IDS)
        # Deliveries handed to the opening stage and not yet passed on to the commit.
        self._opening = 0
        self._opening_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._exporter: Exporter | None = None
        self._closed = False
        self._export_sub: Any = None
        self._own = None
        if self.exports or self.imports:
            # A bridge opened again on the same router (after close()) acts as before.
            own = f"sealbus.bridge/{name}"
            self._own = router._principals.get(own) or router.principal(own)
        if self._own is not None and self.exports:
            router.policy.allow_subscribe(self._own, self.exports)
            # The outbox: a durable consumer of the router's own log. Its cursor moves
            # only once JetStream has stored what it read; it never gives up on an
            # event (NATS may be away for as long as it likes).
            self._export_sub = router.subscribe(
                self._own,
                self.exports,
                name=f"sealbus.bridge.{name}.export",
                durable=True,
                start="earliest",
                max_pending=_EXPORT_WINDOW,
                ack_timeout=3600.0,
                max_deliveries=2**31 - 1,
            )

    # ---- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Bridge:
        """Connect and start exporting and importing, on a thread of the bridge's own.
        Waits up to ``timeout`` for the first connection; if NATS is not reachable by
        then, the bridge keeps trying in the background (exports wait in the log)."""
        timeout = seconds(timeout, "timeout")
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"sealbus-bridge-{self.name}", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        if self._start_error is not None:
            raise BridgeError(f"bridge error: {self._start_error}", reason="start") from self._start_error
        return self

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event stored before the call has been exported and
        acknowledged by JetStream. Returns False on timeout, and at once when nothing
        more can go out (the router was closed)."""
        if timeout is not None:
            timeout = seconds(timeout, "timeout")
        if self._export_sub is None:
            return True
        if self._thread is None:
            return False  # not started: nothing goes out
        deadline = None if timeout is None else time.monotonic() + timeout
        # Until the export has started (NATS not reached yet), nothing goes out.
        if not self._started.wait(timeout) or self._exporter is None:
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._exporter.flush(left)

    def stats(self) -> dict[str, int]:
        """Counts of exported and imported events and messages, duplicates, and
        refusals by reason (signature, malformed, integrity, policy, schema)."""
        with self._lock:
            out = dict(self._counters)
        if self._exporter is not None:
            for key, n in self._exporter.stats().items():
                out[key] += n
        return out

    def close(self) -> None:
        """Stop the loops, drain the NATS connection and close the export consumer
        (its cursor stays: the next bridge of this name resumes where this one was)."""
        if self._closed:
            return
        self._closed = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(30)
        if self._export_sub is not None:
            with contextlib.suppress(SealbusError):
                self._export_sub.close()

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bridge({self.name!r}, exports={self.exports}, imports={self.imports}, trust={sorted(self.trust)})"

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    def _witness(self, entry: str, **details: Any) -> None:
        """Record an import or a refusal in the router's audit trail (never data)."""
        audit = self.router.audit
        if audit is not None:
            audit.record(entry, bridge=self.name, **details)

    # ---- the bridge's thread ----------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(), or lost with the thread
            self._start_error = exc
            self._started.set()
        finally:
            loop.close()

    async def _connect(self) -> Any:
        import nats

        opts: dict[str, Any] = {
            "servers": self.servers,
            "name": f"sealbus-bridge-{self.name}",
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "allow_reconnect": True,
            "connect_timeout": 2,
        }
        if self._tls_ca is not None:
            ctx = ssl.create_default_context(cafile=self._tls_ca)
            opts["tls"] = ctx
        if self._creds is not None:
            opts["user_credentials"] = self._creds
        if self._nkey_seed is not None:
            opts["nkeys_seed"] = self._nkey_seed

        async def reconnected() -> None:
            self._count("reconnects")

        opts["reconnected_cb"] = reconnected
        assert self._stop is not None
        stopped = asyncio.ensure_future(self._stop.wait())
        delay = 0.1
        try:
            while True:
                # nats-py keeps trying a server that refuses us (a wrong NKey, say)
                # within one connect(): close() must not wait on it.
                attempt = asyncio.ensure_future(nats.connect(**opts))
                await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not attempt.done():
                    attempt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await attempt
                    raise BridgeError("bridge error: closed before NATS was reached", reason="closed")
                try:
                    return attempt.result()
                except Exception:
                    if self._stop.is_set():
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            stopped.cancel()

    async def _ensure_stream(self, js: Any) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(STREAM)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=STREAM,
                    subjects=["sealbus.>"],
                    num_replicas=self._replicas,
                    duplicate_window=120.0,
                )
            )

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        nc = await self._connect()
        try:
            js = nc.jetstream(timeout=self._publish_timeout)
            while True:
                try:
                    await self._ensure_stream(js)
                    break
                except Exception:
                    if self._stop.is_set():
                        return
                    await asyncio.sleep(0.5)
            tasks = []
            if self._export_sub is not None:
                self._exporter = self._start_export()
            if self.imports:
                self._prime_seen()
                tasks.append(asyncio.create_task(self._import_loop(js)))
            self._started.set()
            await self._stop.wait()
            if self._exporter is not None:
                # It waits for its thread with the GIL released.
                failure = self._exporter.close()
                if failure is not None:
                    _log.warning("bridge %s: the export had stopped: %s", self.name, failure)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        finally:
            # Every message handled has been acked or published by now.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5.0)

    # ---- export -----------------------------------------------------------------

    def _start_export(self) -> Exporter:
        """The export, on a thread of its own in the core (see :class:`Exporter`):
        polling the log, sealing, signing, publishing and acknowledging the log run
        there with no Python step per event, over a NATS connection of its own."""
        assert self._export_sub is not None
        hook = None
        if tracing.tracer() is not None:
            hook = self._export_hops
        return Exporter(
            self._export_sub._core,
            self.servers,
            router=self.name,
            transit=self.transit,
            signer=self.identity._signer,
            client_name=f"sealbus-export-{self.name}",
            tls_ca=self._tls_ca,
            creds=self._creds,
            nkey_seed=self._nkey_seed,
            poll=_POLL,
            max_events=_MAX_EVENTS_PER_MESSAGE,
            max_bytes=_MAX_BYTES_PER_MESSAGE,
            max_in_flight=self._max_in_flight,
            timeout=self._publish_timeout,
            trace=hook,
            stamps=self._export_stamps,
        )

    def _export_hops(self, rows: list[tuple[str | None, str, int]]) -> None:
        """The tracing hook of the export: one span per trace and type exported."""
        t = tracing.tracer()
        if t is not None:
            hops = {(traceparent, event_type): n for traceparent, event_type, n in rows}
            tracing.hops(t, "bridge export", hops, {"sealbus.bridge": self.name}, receive=False)

    # ---- import -----------------------------------------------------------------

    def _prime_seen(self) -> None:
        """The ids of events imported in the last hour, from the local log, so that a
        message redelivered after a restart is recognised."""
        if not self.router.durable or self._own is None:
            return
        self.router.policy.allow_subscribe(self._own, self.imports)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        with contextlib.suppress(SealbusError):
            for ev in self.router.replay(self._own, self.imports, since=since):
                if "/" in ev.source:
                    self._seen.add(ev.source, ev.id)

    async def _import_loop(self, js: Any) -> None:
        """A durable push consumer delivering to a fixed subject: messages arrive as
        soon as they are stored (no pull to wait out), at most ``4 * fetch_batch``
        unacknowledged at a time (JetStream's ``max_ack_pending``), which bounds this
        process's memory whatever the local consumers do."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        assert self._stop is not None
        nc = js._nc
        durable = f"sealbus-import-{self.name}"
        deliver = f"_sealbus.import.{self.name}"
        subjects = [f"sealbus.{g[:-1]}>" if g.endswith("*") else f"sealbus.{g}" for g in self.imports]
        config = ConsumerConfig(
            durable_name=durable,
            deliver_subject=deliver,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=self._fetch * 4,
            ack_wait=60.0,
            filter_subjects=subjects,
        )
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        async def arrived(msg: Any) -> None:
            inbox.put_nowait(msg)

        sub = await nc.subscribe(deliver, cb=arrived, pending_msgs_limit=self._fetch * 8)
        while True:
            if self._stop.is_set():
                return
            try:
                # Idempotent: the same config binds to the consumer a previous run made.
                await js.add_consumer(STREAM, config)
                break
            except Exception:
                await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        # Two stages, each on a thread of its own: the signatures of a delivery are
        # checked and its frames opened while the delivery before it waits for its
        # fsync, and what was opened meanwhile goes into the next commit together.
        # Each stage takes its work in arrival order, so the local log keeps
        # JetStream's order. The messages are acknowledged, on the loop, only once
        # their events are durable here.
        to_open: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        to_commit: queue.SimpleQueue[tuple[list[Any], list[Runs | None]] | None] = queue.SimpleQueue()
        settled: asyncio.Queue[tuple[list[Any], list[bool | None]]] = asyncio.Queue()
        stages = [
            threading.Thread(target=self._open_stage, args=(to_open, to_commit), name=f"sealbus-open-{self.name}"),
            threading.Thread(
                target=self._commit_stage,
                args=(to_commit, loop, settled),
                name=f"sealbus-commit-{self.name}",
            ),
        ]
        for t in stages:
            t.daemon = True
            t.start()
        acker = asyncio.create_task(self._import_acks(settled))
        try:
            while not self._stop.is_set():
                msgs = [await inbox.get()]
                size = len(msgs[0].data)
                while len(msgs) < self._fetch and size < _DELIVERY_BYTES and not inbox.empty():
                    msgs.append(inbox.get_nowait())
                    size += len(msgs[-1].data)
                with self._opening_lock:
                    inline = self._opening == 0 and size <= _OPEN_ON_LOOP
                    if not inline:
                        self._opening += 1
                if inline:
                    # A small delivery with nothing before it still opening: opened
                    # here, which saves waking a thread, and still in order.
                    to_commit.put((msgs, [self._open(m.subject, m.data, m.headers) for m in msgs]))
                else:
                    to_open.put(msgs)
        finally:
            to_open.put(None)
            with contextlib.suppress(Exception):
                await asyncio.shield(loop.run_in_executor(None, _join, stages))
            # What was committed before the stages stopped is acknowledged now.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(settled.join(), 5.0)
            acker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await acker
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    @staticmethod
    async def _import_acks(settled: asyncio.Queue[tuple[list[Any], list[bool | None]]]) -> None:
        while True:
            msgs, verdicts = await settled.get()
            for msg, verdict in zip(msgs, verdicts, strict=True):
                with contextlib.suppress(Exception):
                    if verdict is True:
                        await msg.ack()
                    elif verdict is False:
                        await msg.term()
                    else:
                        await msg.nak(delay=0.5)
            settled.task_done()

    def _open_stage(
        self,
        to_open: queue.SimpleQueue[list[Any] | None],
        to_commit: queue.SimpleQueue[tuple[list[Any], list[Runs | None]] | None],
    ) -> None:
        """Check the signature of each message and open its frames, in order."""
        try:
            while (msgs := to_open.get()) is not None:
                to_commit.put((msgs, [self._open(m.subject, m.data, m.headers) for m in msgs]))
                with self._opening_lock:
                    self._opening -= 1
        finally:
            to_commit.put(None)

    def _commit_stage(
        self,
        to_commit: queue.SimpleQueue[tuple[list[Any], list[Runs | None]] | None],
        loop: asyncio.AbstractEventLoop,
        settled: asyncio.Queue[tuple[list[Any], list[bool | None]]],
    ) -> None:
        """Publish opened deliveries into the local router, all those waiting as one
        commit (up to ``fetch_batch`` messages and about ``_COMMIT_EVENTS`` events), and
        hand their verdicts to the loop."""
        done = False
        while not done:
            first = to_commit.get()
            if first is None:
                return
            msgs, opened = list(first[0]), list(first[1])
            events = sum(len(o.ids) for o in opened if o is not None)
            while len(msgs) < self._fetch and events < _COMMIT_EVENTS:
                try:
                    more = to_commit.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    done = True
                    break
                msgs.extend(more[0])
                opened.extend(more[1])
                events += sum(len(o.ids) for o in more[1] if o is not None)
            try:
                verdicts = self._import_opened(opened)
            except Exception:
                # Not stored: JetStream sends them again.
                verdicts = [None] * len(msgs)
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(settled.put_nowait, (msgs, verdicts))

    def _fresh(
        self, producer: str, ids: list[str], start: int, end: int, taking: set[tuple[str, str]]
    ) -> list[int] | None:
        """Which of events ``start..end`` (of ``producer``) to import: None for all of
        them, else the indices of those neither imported before nor already taken into
        this commit (``taking``, which records them), so that a message repeated within
        one delivery is stored once too."""
        chunk = ids[start:end]
        if not self._seen.any_of(producer, chunk) and taking.isdisjoint(zip(repeat(producer), chunk)):
            before = len(taking)
            taking.update(zip(repeat(producer), chunk))
            if len(taking) - before == end - start:
                return None
            taking.difference_update(zip(repeat(producer), chunk))  # an id twice in one message
        fresh = []
        for i in range(start, end):
            pair = (producer, ids[i])
            if pair not in self._seen and pair not in taking:
                taking.add(pair)
                fresh.append(i)
        return fresh

    def _import_opened(self, opened: Sequence[Runs | None]) -> list[bool | None]:
        """Import opened messages (None: refused when opened): True to acknowledge one, False to drop it for
        good (a refusal that a redelivery cannot change), None to have it redelivered
        (a local queue refused with ``reject``, or the router failed). A full ``block``
        queue waits here, which is how a slow local consumer slows the import.

        Consecutive events that share type, producer, schema version and attributes go
        into the local router as one batch (one group commit), across messages."""
        verdicts: list[bool | None] = []
        runs: list[_LocalRun] = []
        taking: set[tuple[str, str]] = set()
        for n, cols in enumerate(opened):
            verdicts.append(cols is not None)
            if cols is None:
                continue
            ids = cols.ids
            start = 0
            for end, *attrs, version in cols.runs:
                # (router, type, version, source, kind, subject, traceparent, dataschema, content type)
                key = (cols.router, cols.event_type, version, *attrs)
                if not runs or runs[-1].key != key:
                    runs.append(_LocalRun(key))
                run = runs[-1]
                run.owners.add(n)
                producer = f"{cols.router}/{attrs[0]}"  # attrs[0]: the remote source
                fresh = self._fresh(producer, ids, start, end, taking)
                if fresh is None:
                    run.add(cols, start, end)
                else:
                    self._count("duplicates", end - start - len(fresh))
                    for i in fresh:
                        run.add(cols, i, i + 1)
                start = end
        runs = [run for run in runs if run.ids]
        if not runs:
            return verdicts
        try:
            self._publish_local(runs)
            return verdicts
        except Backpressure as exc:
            if getattr(exc, "receipts", None):
                self._refused_from(runs, 0, exc, verdicts)
                return verdicts
        except SealbusError as exc:
            self._refused_from(runs, 0, exc, verdicts)
            return verdicts
        # A full local queue has no room for the whole delivery: a run at a time, so
        # that it fills up to its bound before the import waits on it.
        for at, run in enumerate(runs):
            try:
                self._publish_local([run])
            except SealbusError as exc:
                self._refused_from(runs, at, exc, verdicts)
                break
        return verdicts

    def _refused_from(self, runs: list[_LocalRun], at: int, exc: SealbusError, verdicts: list[bool | None]) -> None:
        """The local router refused ``runs[at:]``: their messages are not acknowledged,
        JetStream sends them again, and what was stored of them before the refusal is
        recognised by its ids."""
        stored = {receipt.id for receipt in getattr(exc, "receipts", None) or ()}
        if stored:
            for run in runs[at:]:
                router, source = run.key[0], run.key[3]
                self._seen.add_all(f"{router}/{source}", [i for i in run.ids if i in stored])
        for run in runs[at:]:
            for n in run.owners:
                verdicts[n] = None

    def _open(self, subject: str, body: bytes, headers: dict[str, str] | None) -> Runs | None:
        """The message's events, or None (counted) when it is refused."""
        try:
            cols = decode_runs(subject, body, headers, self.trust, self.transit)
        except SignatureRefused as exc:
            self._count("refused_signature")
            claimed = str(getattr(exc, "router", "?"))
            self._witness("bridge_refused", reason="signature", router=claimed, subject=subject)
            if self.router.alerts is not None:
                self.router.alerts.observe_signature_refused(claimed)
            return None
        except WireError:
            self._count("refused_malformed")
            self._witness("bridge_refused", reason="malformed", subject=subject)
            return None
        except (IntegrityError, KeyNotFound) as exc:
            # Tampered under a valid signature, or sealed under a transit key this
            # router does not hold: distribute a new transit key to every importer
            # before any exporter seals with it.
            self._count("refused_integrity")
            self._witness("bridge_refused", reason="integrity", subject=subject)
            if self.router.alerts is not None and isinstance(exc, IntegrityError):
                self.router.alerts.observe_open_failed(f"bridge/{self.name}")
            return None
        self._count("import_messages")
        return cols

    def _remote_principal(self, router: str, source: str) -> Principal:
        name = f"{router}/{source}"
        p = self._remote.get(name)
        if p is None:
            p = self.router.principal(name)
            self._remote[name] = p
        return p

    def _publish_local(self, runs: list[_LocalRun]) -> None:
        """Every run into the local router as one commit (one fsync), in order; each
        passes the local policy for its remote principal and the local schema. Raises
        what refuses the commit itself (a full ``reject`` queue, a closed router, the
        log), so that the messages come again."""
        calls = []
        for run in runs:
            router, event_type, version, source, kind, subject, traceparent, dataschema, contenttype = run.key
            who = self._remote_principal(router, source)
            # An end-to-end frame goes in as its producer sealed it: the local router
            # routes it on its attributes, and its consumers open it bound to
            # ``source``, the producer as its own router named it (docs/FORMAT.md).
            sealed = contenttype == E2E_CONTENT_TYPE and kind == "binary"
            attrs = {
                k: v
                for k, v in (
                    ("subject", subject),
                    ("traceparent", traceparent),
                    ("dataschema", dataschema),
                    ("datacontenttype", None if sealed else contenttype),
                )
                if v is not None
            }
            calls.append(
                (
                    who.name,
                    who._token,
                    event_type,
                    version,
                    "e2e" if sealed else "binary" if kind == "binary" else "json",
                    attrs or None,
                    b"".join(run.chunks),
                    run.offsets,
                    run.ids,
                    run.times,
                )
            )
        # A full local queue holds the import here (that is the flow control), but
        # not forever: the messages go back to JetStream and come again.
        results = publish_runs(self.router._core, calls, _LOCAL_BLOCK_TIMEOUT)
        for run, call, (whole, each) in zip(runs, calls, results, strict=True):
            principal, event_type = call[0], call[2]
            if whole is not None:
                reason = (
                    "refused_policy"
                    if isinstance(whole, PolicyDenied)
                    else "refused_schema"
                    if isinstance(whole, SchemaError)
                    else "refused_other"
                )
                self._count(reason, len(run.ids))
                self._refused_import(principal, event_type, whole, len(run.ids))
                continue
            refused = {i for i, _exc in each}
            self._count("refused_schema", len(refused))
            for _i, exc in each:
                self._refused_import(principal, event_type, exc, 1)
            imported = [event_id for i, event_id in enumerate(run.ids) if i not in refused] if refused else run.ids
            self._seen.add_all(principal, imported)
            self._count("imported", len(imported))
            if imported:
                self._witness("import", principal=principal, type=event_type, ids=imported, count=len(imported))
                t = tracing.tracer()
                if t is not None:
                    hop = {(run.key[6], event_type): len(imported)}  # key[6]: the traceparent
                    attributes = {"sealbus.bridge": self.name, "sealbus.principal": principal}
                    tracing.hops(t, "bridge import", hop, attributes, receive=True)
                if self.router.alerts is not None:
                    self.router.alerts.observe_publish(principal, event_type, len(imported))

    def _refused_import(self, principal: str, event_type: str, exc: SealbusError, count: int) -> None:
        self._witness("import_refused", principal=principal, type=event_type, rule=type(exc).__name__, count=count)
        if self.router.alerts is not None:
            self.router.alerts.observe_refused(principal, event_type, exc, count)

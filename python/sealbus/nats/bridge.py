"""Routers joined through NATS JetStream: export through the log, import with every check.

Export is a transactional outbox. The bridge reads its router's own log as a durable
consumer (so an event is exported only once it is stored, and every stored event is
exported, however long NATS is away), seals each batch under the deployment's transit
key ring, signs it with the router's Ed25519 identity, and publishes it to
``sealbus.<type>`` with many publishes in flight. The log's cursor moves only once
JetStream has acknowledged the batch.

Import is a JetStream durable pull consumer. Each message's signature is checked
against ``trust``, its frames are opened, and its events are published into the local
router as the principal ``<router name>/<principal>``: the local policy, schema and
backpressure apply as to any local producer. A message is acknowledged to JetStream
only once its events are durable in the local log, and an event id seen before is not
stored again (a redelivery after a crash between the two).

The bridge runs its own asyncio loop on one thread; a local publish never waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sealbus._sealbus import Event
from sealbus.errors import (
    Backpressure,
    Closed,
    IntegrityError,
    InvalidArgument,
    KeyNotFound,
    LogError,
    PolicyDenied,
    SchemaError,
    SealbusError,
)
from sealbus.keys import KeyRing
from sealbus.nats.identity import Identity
from sealbus.nats.wire import Outgoing, SignatureRefused, Signed, WireError, decode, encode, subject_of
from sealbus.principal import Principal
from sealbus.router import Router

__all__ = ["Bridge", "BridgeError"]

STREAM = "SEALBUS"
_MAX_EVENTS_PER_MESSAGE = 256
_MAX_BYTES_PER_MESSAGE = 512 * 1024
_IN_FLIGHT = 64
_FETCH = 64
_SEEN_IDS = 1_000_000
_LOCAL_BLOCK_TIMEOUT = 1.0


class BridgeError(SealbusError):
    """The bridge is misconfigured or could not start (``reason``)."""


def _attributes(ev: Event) -> tuple[Any, ...]:
    """What one local publish call shares across its events."""
    return (ev.source, ev.kind, ev.subject, ev.traceparent, ev.dataschema, ev.datacontenttype)


def _globs(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class _Seen:
    """Event ids imported lately, oldest first out: a redelivered JetStream message is
    recognised by its events' ids. Filled at start from the local log's recent imports."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


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
        if not name or "/" in name or "." in name or any(c.isspace() for c in name):
            raise InvalidArgument(
                f"invalid argument: name: {name!r} is not a router name (no '/', '.' or spaces)",
                name="name",
                reason="router name",
            )
        if not isinstance(identity, Identity):
            raise InvalidArgument("invalid argument: identity: not an Identity", name="identity", reason="type")
        if max_in_flight < 1 or fetch_batch < 1:
            raise InvalidArgument(
                "invalid argument: max_in_flight and fetch_batch are at least 1", name="max_in_flight", reason="range"
            )
        self.router = router
        self.name = name
        self.identity = identity
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.transit = (
            transit_keys if isinstance(transit_keys, KeyRing) else KeyRing.load_or_create(os.fspath(transit_keys))
        )
        self.exports = _globs(exports)
        self.imports = _globs(imports)
        self.trust = {k: bytes(v) for k, v in (trust or {}).items()}
        self._tls_ca = None if tls_ca is None else os.fspath(tls_ca)
        self._creds = None if creds is None else os.fspath(creds)
        self._nkey_seed = None if nkey_seed is None else os.fspath(nkey_seed)
        self._replicas = stream_replicas
        self._max_in_flight = max_in_flight
        self._fetch = fetch_batch
        self._publish_timeout = publish_timeout
        if self.exports and not router.durable:
            raise BridgeError(
                "bridge error: exports need a durable router (the log is the outbox)", reason="not durable"
            )
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "exported",
                "export_messages",
                "export_retries",
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
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._idle = threading.Condition()
        self._export_generation = 0
        self._export_idle_generation = -1
        self._closed = False
        self._export_sub: Any = None
        self._own = router.principal(f"sealbus.bridge/{name}") if self.exports or self.imports else None
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
                max_pending=8192,
                ack_timeout=3600.0,
                max_deliveries=2**31 - 1,
            )

    # ---- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Bridge:
        """Connect and start exporting and importing, on a thread of the bridge's own.
        Waits up to ``timeout`` for the first connection; if NATS is not reachable by
        then, the bridge keeps trying in the background (exports wait in the log)."""
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
        acknowledged by JetStream. Returns False on timeout."""
        if self._export_sub is None:
            return True
        with self._idle:
            self._export_generation += 1
            wanted = self._export_generation
            return self._idle.wait_for(lambda: self._export_idle_generation >= wanted, timeout)

    def stats(self) -> dict[str, int]:
        """Counts of exported and imported events and messages, duplicates, and
        refusals by reason (signature, malformed, integrity, policy, schema)."""
        with self._lock:
            return dict(self._counters)

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
        delay = 0.1
        while True:
            try:
                return await nats.connect(**opts)
            except Exception:
                if self._stop is not None and self._stop.is_set():
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

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
                tasks.append(asyncio.create_task(self._export_loop(js)))
            if self.imports:
                self._prime_seen()
                tasks.append(asyncio.create_task(self._import_loop(js)))
            self._started.set()
            await self._stop.wait()
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

    async def _export_loop(self, js: Any) -> None:
        loop = asyncio.get_running_loop()
        sub = self._export_sub
        assert self._stop is not None
        while not self._stop.is_set():
            with self._idle:
                generation = self._export_generation
            try:
                batch = await loop.run_in_executor(None, sub.poll_batch, 4096, 0.05)
            except Closed:
                return
            if len(batch) == 0:
                with self._idle:
                    self._export_idle_generation = generation
                    self._idle.notify_all()
                continue
            messages = self._export_messages(batch)
            await self._publish_all(js, messages)
            batch.ack()
            self._count("exported", len(batch))
            self._count("export_messages", len(messages))

    def _export_messages(self, batch: Any) -> list[tuple[str, bytes, dict[str, str]]]:
        """Runs of events of one type, cut at a size, each sealed and signed."""
        out: list[tuple[str, bytes, dict[str, str]]] = []
        run: list[Outgoing] = []
        run_type = ""
        run_bytes = 0

        def cut() -> None:
            if run:
                body, headers = encode(self.name, run_type, run, self.transit, self.identity)
                out.append((subject_of(run_type), body, headers))

        for i in range(len(batch)):
            ev = batch[i].event
            item = Outgoing.of(ev)
            size = len(item.cloudevent)
            if ev.type != run_type or len(run) >= _MAX_EVENTS_PER_MESSAGE or run_bytes + size > _MAX_BYTES_PER_MESSAGE:
                cut()
                run, run_type, run_bytes = [], ev.type, 0
            run.append(item)
            run_bytes += size
        cut()
        return out

    async def _publish_all(self, js: Any, messages: list[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish in order with up to ``max_in_flight`` awaiting their acks; retry
        what failed, with backoff, until JetStream has every one. A retry of a stored
        message is dropped by JetStream (``Nats-Msg-Id``) or by the importer (event id)."""
        assert self._stop is not None
        pending = list(messages)
        delay = 0.05
        while pending:
            failed: list[tuple[str, bytes, dict[str, str]]] = []
            for start in range(0, len(pending), self._max_in_flight):
                window = pending[start : start + self._max_in_flight]
                results = await asyncio.gather(
                    *(js.publish(subj, body, headers=headers) for subj, body, headers in window),
                    return_exceptions=True,
                )
                failed.extend(m for m, r in zip(window, results, strict=True) if isinstance(r, BaseException))
            if not failed:
                return
            self._count("export_retries", len(failed))
            if self._stop.is_set():
                raise asyncio.CancelledError
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            pending = failed

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
                    self._seen.add(ev.id)

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
        try:
            while not self._stop.is_set():
                msgs = [await inbox.get()]
                while len(msgs) < self._fetch and not inbox.empty():
                    msgs.append(inbox.get_nowait())
                # Opening, checks and the local publish run off the loop; the messages
                # are acknowledged only once their events are durable here.
                verdicts = await loop.run_in_executor(None, self._import_messages, msgs)
                for msg, verdict in zip(msgs, verdicts, strict=True):
                    with contextlib.suppress(Exception):
                        if verdict is True:
                            await msg.ack()
                        elif verdict is False:
                            await msg.term()
                        else:
                            await msg.nak(delay=0.5)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _import_messages(self, msgs: Sequence[Any]) -> list[bool | None]:
        """Import a delivery of messages: True to acknowledge one, False to drop it for
        good (a refusal that a redelivery cannot change), None to have it redelivered
        (a local queue refused with ``reject``, or the router failed). A full ``block``
        queue waits here, which is how a slow local consumer slows the import.

        Consecutive events that share type, producer, schema version and attributes go
        into the local router as one batch (one group commit), across messages."""
        verdicts: list[bool | None] = []
        runs: list[tuple[tuple[Any, ...], list[Event], set[int]]] = []
        for n, msg in enumerate(msgs):
            signed = self._open(msg.subject, msg.data, msg.headers)
            verdicts.append(signed is not None)
            if signed is None:
                continue
            fresh = [
                (ev, v) for ev, v in zip(signed.events, signed.schema_versions, strict=True) if ev.id not in self._seen
            ]
            self._count("duplicates", len(signed.events) - len(fresh))
            for ev, version in fresh:
                key = (signed.router, signed.event_type, version, *_attributes(ev))
                if runs and runs[-1][0] == key:
                    runs[-1][1].append(ev)
                    runs[-1][2].add(n)
                else:
                    runs.append((key, [ev], {n}))
        for at, (key, events, _owners) in enumerate(runs):
            try:
                self._publish_local(key[0], key[1], key[2], events)
            except SealbusError:
                # Nothing of this run or after it is acknowledged: JetStream sends
                # those messages again, and what was stored of them is recognised.
                for _key, _events, later in runs[at:]:
                    for n in later:
                        verdicts[n] = None
                break
        return verdicts

    def _open(self, subject: str, body: bytes, headers: dict[str, str] | None) -> Signed | None:
        """The message's events, or None (counted) when it is refused."""
        try:
            signed = decode(subject, body, headers, self.trust, self.transit)
        except SignatureRefused:
            self._count("refused_signature")
            return None
        except WireError:
            self._count("refused_malformed")
            return None
        except (IntegrityError, KeyNotFound):
            # Tampered under a valid signature, or sealed under a transit key this
            # router does not hold: distribute a new transit key to every importer
            # before any exporter seals with it.
            self._count("refused_integrity")
            return None
        self._count("import_messages")
        return signed

    def _remote_principal(self, router: str, source: str) -> Principal:
        name = f"{router}/{source}"
        p = self._remote.get(name)
        if p is None:
            p = self.router.principal(name)
            self._remote[name] = p
        return p

    def _publish_local(self, router: str, event_type: str, version: int | None, events: list[Event]) -> None:
        first = events[0]
        who = self._remote_principal(router, first.source)
        attrs: dict[str, str | None] = {
            k: v
            for k, v in (
                ("subject", first.subject),
                ("traceparent", first.traceparent),
                ("dataschema", first.dataschema),
                ("datacontenttype", first.datacontenttype),
            )
            if v is not None
        }
        datas = [ev.data_bytes for ev in events]
        buffer = b"".join(datas)
        offsets = [0]
        for d in datas:
            offsets.append(offsets[-1] + len(d))
        try:
            self.router._core.publish(
                who.name,
                who._token,
                event_type,
                buffer,
                offsets,
                "binary" if first.kind == "binary" else "json",
                version,
                attrs or None,
                # A full local queue holds the import here (that is the flow control),
                # but not forever: the message goes back to JetStream and comes again.
                _LOCAL_BLOCK_TIMEOUT,
                [ev.id for ev in events],
            )
        except PolicyDenied:
            self._count("refused_policy", len(events))
            return
        except SchemaError:
            if len(events) > 1:
                # One bad event must not take its neighbours with it.
                for ev in events:
                    self._publish_local(router, event_type, version, [ev])
                return
            self._count("refused_schema")
            return
        except (Backpressure, Closed, LogError):
            raise
        except SealbusError:
            self._count("refused_other", len(events))
            return
        for ev in events:
            self._seen.add(ev.id)
        self._count("imported", len(events))

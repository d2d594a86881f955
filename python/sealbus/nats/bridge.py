"""Routers joined through NATS JetStream: export through the log, import with every check.

Export is a transactional outbox. The bridge reads its router's own log as a durable
consumer (so an event is exported only once it is stored, and every stored event is
exported, however long NATS is away), woken by the log's commit, seals each batch
under the deployment's transit key ring, signs it with the router's Ed25519 identity,
and publishes it to ``sealbus.<type>`` with many publishes in flight, while the next
batch is read and sealed. The log's cursor moves only once JetStream has acknowledged
the batch, in order. All of this runs in the core, on a thread and a NATS connection
of its own (the NATS maintainers' Rust client), with no Python step per event.

Import is a JetStream durable push consumer, also in the core, on a connection and
threads of its own. Each message's signature is checked against ``trust``, its frames
are opened, and its events are published into the local router as the principal
``<router name>/<principal>``: the local policy, schema and backpressure apply as to
any local producer. A delivery is checked and opened while the one before it waits
for its fsync, and the deliveries waiting then go into the local log as one commit
(one fsync), however their events' producers and attributes vary. A message is
acknowledged to JetStream only once its events are durable in the local log, and an
event id seen before is not stored again (a redelivery after a crash between the
two). Python is called only for a remote producer's first event and, when the router
keeps an audit trail, alerts or traces, once per commit to record it.

An end-to-end event crosses with the frame its producer sealed as its data, inside
the transit seal: the bridges never hold a key that opens it. Imported, it is stored as
``<router name>/<principal>`` like any remote event, and its consumers open it bound to
``<principal>``, the producer as its own router named it, which only that router's
signature can vouch for (docs/FORMAT.md, *Across routers*).

The export and the import each create the ``SEALBUS`` stream if no bridge has yet. A
local publish never waits on either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sealbus import tracing
from sealbus._args import blob, count, names, path, seconds, text, wrong_type
from sealbus._sealbus import Exporter, Importer
from sealbus.errors import InvalidArgument, SealbusError
from sealbus.keys import KeyRing
from sealbus.nats.identity import Identity
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
_SEEN_IDS = 1_000_000
# Events per local commit of the import, and message bytes per delivery to its commit
# thread: batches of a few megabytes reuse the allocator's memory, where a backlog taken
# whole (``fetch_batch`` messages of up to 256 events each) made every commit fault in
# fresh pages for its buffers.
_COMMIT_EVENTS = 2048
_DELIVERY_BYTES = 2 * 1024 * 1024
_LOCAL_BLOCK_TIMEOUT = 1.0


_COUNTERS = (
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
)


class BridgeError(SealbusError):
    """The bridge is misconfigured or could not start (``reason``)."""


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
    #: Whether the import records each message's stage times, likewise.
    _import_stamps = False

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
        self._lock = threading.Lock()
        self._started = False
        self._exporter: Exporter | None = None
        self._importer: Importer | None = None
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
        """Start exporting and importing, each on threads and a NATS connection of its
        own. Waits up to ``timeout`` for them to connect and bind to the stream
        (creating it if no bridge has yet); if NATS is not reachable by then, they
        keep trying in the background (exports wait in the log)."""
        timeout = seconds(timeout, "timeout")
        with self._lock:
            if self._started or self._closed:
                return self
            self._started = True
            if self._export_sub is not None:
                self._exporter = self._start_export()
            if self.imports:
                self._importer = self._start_import()
        deadline = time.monotonic() + timeout
        for part in (self._exporter, self._importer):
            if part is not None:
                part.wait_ready(max(0.0, deadline - time.monotonic()))
        return self

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event stored before the call has been exported and
        acknowledged by JetStream. Returns False on timeout, and at once when nothing
        more can go out (the bridge is not started, or the router was closed)."""
        if timeout is not None:
            timeout = seconds(timeout, "timeout")
        if self._export_sub is None:
            return True
        if self._exporter is None:
            return False  # not started: nothing goes out
        return self._exporter.flush(timeout)

    def stats(self) -> dict[str, int]:
        """Counts of exported and imported events and messages, duplicates, and
        refusals by reason (signature, malformed, integrity, policy, schema, other),
        and reconnections to NATS (of the export's and the import's connections)."""
        out = dict.fromkeys(_COUNTERS, 0)
        for part in (self._exporter, self._importer):
            if part is not None:
                for key, n in part.stats().items():
                    out[key] += n
        return out

    def close(self) -> None:
        """Stop the import (what was committed is acknowledged first) and the export,
        and close the export consumer (its cursor stays: the next bridge of this name
        resumes where this one was)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Each waits for its threads with the GIL released.
        for part, what in ((self._importer, "import"), (self._exporter, "export")):
            failure = None if part is None else part.close()
            if failure is not None:
                _log.warning("bridge %s: the %s had stopped: %s", self.name, what, failure)
        if self._export_sub is not None:
            with contextlib.suppress(SealbusError):
                self._export_sub.close()

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Bridge({self.name!r}, exports={self.exports}, imports={self.imports}, trust={sorted(self.trust)})"

    def _witness(self, entry: str, **details: Any) -> None:
        """Record an import or a refusal in the router's audit trail (never data)."""
        audit = self.router.audit
        if audit is not None:
            audit.record(entry, bridge=self.name, **details)

    def _connection(self, half: str) -> dict[str, Any]:
        """How the export or the import (``half``) reaches NATS and its stream: each
        has a connection of its own, named for it."""
        return {
            "client_name": f"sealbus-{half}-{self.name}",
            "stream": STREAM,
            "replicas": self._replicas,
            "tls_ca": self._tls_ca,
            "creds": self._creds,
            "nkey_seed": self._nkey_seed,
        }

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
            **self._connection("export"),
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

    def _start_import(self) -> Importer:
        """The import, on threads of its own in the core (see :class:`Importer`): a
        durable push consumer delivering to a fixed subject, so that messages arrive
        as soon as they are stored (no pull to wait out), at most ``4 * fetch_batch``
        unacknowledged at a time (JetStream's ``max_ack_pending``), which bounds this
        process's memory whatever the local consumers do."""
        audit, alerts = self.router.audit, self.router.alerts
        report = None
        if audit is not None or alerts is not None or tracing.tracer() is not None:
            report = self._import_report
        return Importer(
            self.router._core,
            self.servers,
            **self._connection("import"),
            durable=f"sealbus-import-{self.name}",
            deliver=f"_sealbus.import.{self.name}",
            filter_subjects=[f"sealbus.{g[:-1]}>" if g.endswith("*") else f"sealbus.{g}" for g in self.imports],
            trust=self.trust,
            transit=self.transit,
            principal=self._remote_token,
            report=report,
            fetch=self._fetch,
            delivery_bytes=_DELIVERY_BYTES,
            commit_events=_COMMIT_EVENTS,
            # A full local queue holds the import (that is the flow control), but not
            # forever: the messages go back to JetStream and come again.
            block_timeout=_LOCAL_BLOCK_TIMEOUT,
            seen=self._recent_imports(),
            seen_capacity=_SEEN_IDS,
            stamps=self._import_stamps,
        )

    def _remote_token(self, name: str) -> bytes:
        """The token of the remote producer ``name`` (``<router>/<principal>``),
        created on its first event. A name the router cannot give a principal raises,
        and the importer refuses that producer's events for good."""
        router = self.router
        p = router._principals.get(name) or router.principal(name)
        return p._token

    def _recent_imports(self) -> list[tuple[str, str]]:
        """The (producer, id) pairs of events imported in the last hour, from the local
        log, so that a message redelivered after a restart is recognised."""
        if not self.router.durable or self._own is None:
            return []
        self.router.policy.allow_subscribe(self._own, self.imports)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        seen = []
        with contextlib.suppress(SealbusError):
            for ev in self.router.replay(self._own, self.imports, since=since):
                if "/" in ev.source:
                    seen.append((ev.source, ev.id))
        return seen

    def _import_report(
        self,
        messages: list[tuple[str, str | None, str]],
        imported: list[tuple[str, str, str | None, list[str]]],
        refused: list[tuple[str, str, SealbusError, int]],
    ) -> None:
        """Record a commit of the import in the audit trail, the alerts and the traces
        (called by the importer before it acknowledges the commit's messages)."""
        alerts = self.router.alerts
        for reason, claimed, subject in messages:
            if reason == "signature":
                self._witness("bridge_refused", reason="signature", router=claimed or "?", subject=subject)
                if alerts is not None:
                    alerts.observe_signature_refused(claimed or "?")
            elif reason == "malformed":
                self._witness("bridge_refused", reason="malformed", subject=subject)
            else:
                # Tampered under a valid signature ("integrity"), or sealed under a
                # transit key this router does not hold: distribute a new transit key
                # to every importer before any exporter seals with it.
                self._witness("bridge_refused", reason="integrity", subject=subject)
                if alerts is not None and reason == "integrity":
                    alerts.observe_open_failed(f"bridge/{self.name}")
        t = tracing.tracer()
        for principal, event_type, traceparent, ids in imported:
            self._witness("import", principal=principal, type=event_type, ids=ids, count=len(ids))
            if t is not None:
                attributes = {"sealbus.bridge": self.name, "sealbus.principal": principal}
                tracing.hops(t, "bridge import", {(traceparent, event_type): len(ids)}, attributes, receive=True)
            if alerts is not None:
                alerts.observe_publish(principal, event_type, len(ids))
        for principal, event_type, exc, n in refused:
            self._witness("import_refused", principal=principal, type=event_type, rule=type(exc).__name__, count=n)
            if alerts is not None:
                alerts.observe_refused(principal, event_type, exc, n)

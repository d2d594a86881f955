"""The public router API: principals, policy, schemas, producers and subscriptions.

The Rust core (``sealbus._sealbus.RouterCore``) does the work; this module gives it
an API that reads like its documentation.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sealbus import aio, telemetry
from sealbus._args import items, names, pattern_text, schema_text
from sealbus._args import path as path_arg
from sealbus._sealbus import Event, KeyRing, ManualClock, Receipt, Receipts, RouterCore, new_event_ids
from sealbus.alerts import AlertConfig, Alerts
from sealbus.audit import AuditTrail, trail_dir
from sealbus.codec import encode_batch, encode_one
from sealbus.e2e import ConsumerKeyPair, seal_e2e
from sealbus.errors import (
    Backpressure,
    Closed,
    InvalidArgument,
    InvalidEvent,
    PolicyDenied,
    SchemaNotFound,
    SealbusError,
    SealError,
    ValidationError,
)
from sealbus.ledger import Ledger
from sealbus.metrics import Tally
from sealbus.principal import Principal, principal_name
from sealbus.subscription import Subscription

OnFull = Literal["block", "reject", "drop_oldest"]
Fsync = Literal["always", "batch", "never"]
Seal = Literal["auto", "at-rest", "none"]
KEYS_ENV = "SEALBUS_KEYS"


def _types_and_pattern(
    types: str | Sequence[str], pattern: Mapping[str, Any] | str | None
) -> tuple[list[str], str | None]:
    """The type list and the pattern as JSON text, as the core takes them."""
    return names(types, "types"), pattern_text(pattern)


def _key_ring(
    path: str | os.PathLike[str] | None, seal: Seal, keys: KeyRing | str | os.PathLike[str] | None
) -> tuple[KeyRing | None, str]:
    """The at-rest key ring and a description of where it came from (never key bytes)."""
    if seal not in ("auto", "at-rest", "none"):
        raise InvalidArgument(
            f"invalid argument: seal: {seal!r} is not 'auto', 'at-rest' or 'none'",
            name="seal",
            reason="unknown",
        )
    if seal == "none":
        if keys is not None:
            raise InvalidArgument("invalid argument: keys: given with seal='none'", name="keys", reason="contradiction")
        return None, "none (not sealed)"
    if isinstance(keys, KeyRing):
        return keys, "the KeyRing passed in"
    if keys is not None:
        return KeyRing.load_or_create(keys), f"key file {os.fspath(keys)}"
    if seal == "auto" and path is None:
        return None, "none (in-memory router; pass seal='at-rest' to seal)"
    if os.environ.get(KEYS_ENV):
        return KeyRing.from_env(KEYS_ENV), f"environment variable {KEYS_ENV}"
    if path is None:
        return KeyRing.generate(), "generated for this process (in memory only)"
    key_file = Path(os.fspath(path)).resolve()
    key_file = key_file.with_name(key_file.name + ".keys")
    return KeyRing.load_or_create(key_file), f"key file {key_file}"


Compatibility = Literal["none", "backward", "forward", "full"]

_ATTRS = ("subject", "datacontenttype", "dataschema", "traceparent")


class Policy:
    """Who may publish and who may receive what. Default deny: nothing is allowed
    until a rule allows it. Rules are event types or ``*`` globs (``orders.*``)."""

    def __init__(self, core: RouterCore, audit: AuditTrail | None = None) -> None:
        self._core = core
        self._audit = audit

    def _record(self, change: str, who: Principal | str, glob: str) -> None:
        if self._audit is not None:
            self._audit.record("policy", change=change, principal=principal_name(who), types=glob)

    def allow_publish(self, who: Principal | str, types: str | Iterable[str]) -> None:
        for t in names(types, "types"):
            self._core.allow(principal_name(who), "publish", t)
            self._record("allow_publish", who, t)

    def allow_subscribe(self, who: Principal | str, types: str | Iterable[str]) -> None:
        for t in names(types, "types"):
            self._core.allow(principal_name(who), "subscribe", t)
            self._record("allow_subscribe", who, t)

    def revoke_publish(self, who: Principal | str, glob: str) -> bool:
        done = self._core.revoke(principal_name(who), "publish", glob)
        self._record("revoke_publish", who, glob)
        return done

    def revoke_subscribe(self, who: Principal | str, glob: str) -> bool:
        """Revoke a grant; delivery of matching types stops at once."""
        done = self._core.revoke(principal_name(who), "subscribe", glob)
        self._record("revoke_subscribe", who, glob)
        return done

    def require_end_to_end(self, types: str) -> None:
        """Events of these types must be sealed end to end by their producer: the
        router, its log and its queues only ever hold ciphertext, and only consumers
        allowed to read the type (and holding a key pair) can open them. Content
        patterns on their data are refused; attributes stay matchable."""
        self._core.require_end_to_end(types)
        if self._audit is not None:
            self._audit.record("policy", change="require_end_to_end", types=types)

    def requires_end_to_end(self, event_type: str) -> bool:
        return self._core.requires_end_to_end(event_type)

    def can_publish(self, who: Principal | str, event_type: str) -> bool:
        return self._core.allows(principal_name(who), "publish", event_type)

    def can_subscribe(self, who: Principal | str, type_or_glob: str) -> bool:
        return self._core.allows(principal_name(who), "subscribe", type_or_glob)

    def grants(self, who: Principal | str) -> dict[str, list[str]]:
        pub, sub = self._core.grants(principal_name(who))
        return {"publish": pub, "subscribe": sub}


class Schemas:
    """The versioned JSON Schema registry (2020-12 and draft 7)."""

    def __init__(self, core: RouterCore, audit: AuditTrail | None = None) -> None:
        self._core = core
        self._audit = audit

    def register(
        self,
        event_type: str,
        schema: Mapping[str, Any] | str,
        *,
        version: int | None = None,
        compatibility: Compatibility = "backward",
    ) -> int:
        """Register a new version (the next one if ``version`` is None); refused with
        :class:`~sealbus.SchemaIncompatible` if it breaks ``compatibility`` with the
        previous version. Returns the version number."""
        text = schema_text(event_type, schema)
        v = self._core.register_schema(event_type, text, version, compatibility)
        if self._audit is not None:
            digest = hashlib.sha256(text.encode()).hexdigest()
            self._audit.record("schema", type=event_type, version=v, compatibility=compatibility, sha256=digest)
        return v

    def latest_version(self, event_type: str) -> int | None:
        return self._core.schema_latest_version(event_type)


def _check_attrs(attrs: Mapping[str, str | None]) -> None:
    for k in attrs:
        if k not in _ATTRS:
            raise InvalidArgument(
                f"invalid argument: {k}: not a CloudEvents attribute ({', '.join(_ATTRS)})",
                name=k,
                reason="unknown attribute",
            )


class _ProducerAudit:
    """What :mod:`sealbus.aio` calls to put a producer's asynchronous publishes in the
    router's audit trail, once their outcomes are known."""

    __slots__ = ("_producer",)

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    def published(self, event_type: str, kind: str, ids: list[str], nbytes: int, version: int | None) -> None:
        p = self._producer
        if p._router.audit is not None:
            p._record_stored(p._router.audit, event_type, ids, nbytes, version, kind)
        if p._router.alerts is not None:
            p._router.alerts.observe_publish(p._who.name, event_type, len(ids))

    def refused(self, event_type: str, exc: SealbusError, count: int) -> None:
        p = self._producer
        if p._router.audit is not None:
            p._record_refused(p._router.audit, event_type, exc, count)
        if p._router.alerts is not None:
            p._router.alerts.observe_refused(p._who.name, event_type, exc, count)


class Producer:
    """Publishes events as one principal. Obtain with :meth:`Router.producer`."""

    def __init__(self, router: Router, who: Principal, timeout: float | None) -> None:
        self._router = router
        self._who = who
        self._timeout = timeout
        self._auditor: _ProducerAudit | None = None

    @property
    def name(self) -> str:
        return self._who.name

    def __repr__(self) -> str:
        return f"Producer({self._who.name!r})"

    def publish(
        self,
        event_type: str,
        data: Any = None,
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipt:
        """Validate, authorise, route and queue one event; returns its receipt.
        Attributes: ``subject``, ``datacontenttype``, ``dataschema``, ``traceparent``."""
        kind, blob = encode_one(data)
        return self._send(event_type, kind, blob, [0, len(blob)], [data], version, timeout, attrs)[0]

    def publish_many(
        self,
        event_type: str,
        batch: Sequence[Any],
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipts:
        """Publish a batch in one call into Rust (GIL released). All or nothing up
        to the queues: one invalid or forbidden event refuses the whole batch."""
        kind, buffer, offsets = encode_batch(items(batch, "batch"))
        return self._send(event_type, kind, buffer, offsets, batch, version, timeout, attrs)

    def publish_raw(
        self,
        event_type: str,
        buffer: bytes,
        offsets: Sequence[int],
        *,
        kind: Literal["json", "binary"] = "json",
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipts:
        """Publish events already encoded in one buffer (JSON texts or blobs) with
        ``n + 1`` offsets: the fastest path, no Python object per event."""
        return self._send(event_type, kind, buffer, items(offsets, "offsets"), None, version, timeout, attrs)

    def _send(
        self,
        event_type: str,
        kind: str,
        buffer: bytes,
        offsets: list[int],
        originals: Sequence[Any] | None,
        version: int | None,
        timeout: float | None,
        attrs: Mapping[str, str | None],
    ) -> Receipts:
        _check_attrs(attrs)
        ids: list[str] | None = None
        core = self._router._core
        # A producer that may not publish the type is refused (and counted) by the
        # router before anything is sealed.
        if core.requires_end_to_end(event_type) and core.allows(self._who.name, "publish", event_type):
            # Sizes before the plaintext is validated or sealed, as the router does.
            core.check_sizes(offsets)
            kind, buffer, offsets, ids = self._seal_end_to_end(event_type, kind, buffer, offsets)
        audit = self._router.audit
        alerts = self._router.alerts
        watch, attrs = telemetry.watch(self._router._tally, self._who.name, event_type, len(offsets) - 1, attrs)
        try:
            receipts = self._router._core.publish(
                self._who.name,
                self._who._token,
                event_type,
                buffer,
                offsets,
                kind,
                version,
                dict(attrs) if attrs else None,
                timeout if timeout is not None else self._timeout,
                ids,
            )
        except SealbusError as exc:
            if watch is not None:
                watch.refused(exc)
            if audit is not None:
                self._record_refused(audit, event_type, exc, len(offsets) - 1)
            if alerts is not None:
                alerts.observe_refused(self._who.name, event_type, exc, len(offsets) - 1)
            if not isinstance(exc, Backpressure):
                raise
            self._hand_back(exc, originals, buffer, offsets)
            raise
        if watch is not None:
            watch.published()
        if audit is not None:
            version = receipts[0].schema_version if len(receipts) else None
            self._record_publish(audit, event_type, receipts.ids, offsets, version, kind)
        if alerts is not None:
            alerts.observe_publish(self._who.name, event_type, len(offsets) - 1)
        return receipts

    def _record_refused(self, audit: AuditTrail, event_type: str, exc: SealbusError, count: int) -> None:
        # The rule and where, never the data: a validation error's message may quote
        # a value, so only its class and JSON pointer are kept. A closed router (or one
        # that belongs to another process) has no trail to write to: its own error is
        # the one to raise.
        if isinstance(exc, Closed):
            return
        audit.record(
            "refused",
            principal=self._who.name,
            type=event_type,
            rule=type(exc).__name__,
            path=getattr(exc, "path", None),
            index=getattr(exc, "index", None),
            count=count,
        )

    def _record_publish(
        self, audit: AuditTrail, event_type: str, ids: list[str], offsets: list[int], version: int | None, kind: str
    ) -> None:
        self._record_stored(audit, event_type, ids, offsets[-1] - offsets[0], version, kind)

    def _record_stored(
        self, audit: AuditTrail, event_type: str, ids: list[str], nbytes: int, version: int | None, kind: str
    ) -> None:
        audit.record(
            "publish",
            principal=self._who.name,
            type=event_type,
            ids=ids,
            count=len(ids),
            bytes=nbytes,
            version=version,
            key=self._router._active_key_id(),
            data=kind,
        )

    @staticmethod
    def _hand_back(exc: Backpressure, originals: Sequence[Any] | None, buffer: bytes, offsets: list[int]) -> None:
        """tokio's try_send: the caller gets back what was not queued."""
        accepted: int = exc.accepted
        if originals is not None:
            exc.events = list(originals[accepted:])
        else:
            exc.events = [buffer[offsets[i] : offsets[i + 1]] for i in range(accepted, len(offsets) - 1)]

    async def publish_async(
        self,
        event_type: str,
        data: Any = None,
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipt:
        """:meth:`publish` for asyncio: returns the receipt once the event is stored
        (on disk per ``fsync``), without blocking the loop. Concurrent coroutines'
        events share group commits; see :mod:`sealbus.aio`. Cancelling the await
        does not withdraw the event: it is published (or refused) all the same.
        ``timeout`` bounds the wait on a full ``block`` queue (then ``Backpressure``)."""
        kind, blob = encode_one(data)
        receipt: Receipt = await self._submit(event_type, kind, blob, [0, len(blob)], [data], version, timeout, attrs)
        return receipt

    async def publish_many_async(
        self,
        event_type: str,
        batch: Sequence[Any],
        *,
        version: int | None = None,
        timeout: float | None = None,
        **attrs: str | None,
    ) -> Receipts:
        """:meth:`publish_many` for asyncio (all or nothing, like it), in the same
        group commits as :meth:`publish_async`."""
        kind, buffer, offsets = await aio.encode_batch_async(items(batch, "batch"))
        receipts: Receipts = await self._submit(
            event_type, kind, buffer, offsets, batch, version, timeout, attrs, single=False
        )
        return receipts

    def _submit(
        self,
        event_type: str,
        kind: str,
        buffer: bytes,
        offsets: list[int],
        originals: Sequence[Any],
        version: int | None,
        timeout: float | None,
        attrs: Mapping[str, str | None],
        single: bool = True,
    ) -> asyncio.Future[Any]:
        if attrs:
            _check_attrs(attrs)
        ids: list[str] | None = None
        core = self._router._core
        if core.requires_end_to_end(event_type) and core.allows(self._who.name, "publish", event_type):
            kind, buffer, offsets, ids = self._seal_end_to_end(event_type, kind, buffer, offsets)
        # The audit trail learns the outcome when the committer hands it back (also
        # for an await that was cancelled meanwhile: the event is published all the
        # same), one entry per producer and type for each turn's receipts; so do the
        # alert rules.
        watched = self._router.audit is not None or self._router.alerts is not None
        note = self._audit_note(event_type, kind, offsets) if watched else None
        watch, attrs = telemetry.watch(self._router._tally, self._who.name, event_type, len(offsets) - 1, attrs)
        try:
            future = aio.submit(
                self._router,
                core,
                self._who.name,
                self._who._token,
                event_type,
                kind,
                buffer,
                offsets,
                originals,
                version,
                timeout if timeout is not None else self._timeout,
                attrs,
                ids,
                single,
                note,
            )
        except SealbusError as exc:
            if watch is not None:
                watch.refused(exc)
            raise
        if watch is not None:
            watch.settle(future)
        return future

    def _audit_note(self, event_type: str, kind: str, offsets: list[int]) -> aio.AuditNote:
        auditor = self._auditor
        if auditor is None:
            auditor = self._auditor = _ProducerAudit(self)
        return aio.AuditNote(auditor, event_type, kind, len(offsets) - 1, offsets[-1] - offsets[0])

    def _seal_end_to_end(
        self, event_type: str, kind: str, buffer: bytes, offsets: list[int]
    ) -> tuple[str, bytes, list[int], list[str]]:
        """Seal a batch for every consumer allowed to read the type, under a fresh
        data key wrapped for each (X25519 + HKDF-SHA256 + AES-GCM): the router gets
        ciphertext and the cleartext attributes it routes on."""
        if kind != "json":
            raise InvalidEvent(
                f"invalid event: data: {event_type} is sealed end to end, and its data must be JSON",
                field="data",
                reason="end-to-end data is JSON",
            )
        recipients = dict(self._router._core.recipients(event_type))
        if not recipients:
            raise SealError(
                f"seal error: no consumer allowed to read {event_type} has registered a public key",
                reason="no recipients",
            )
        core = self._router._core
        # Honest producers learn of bad data here; consumers validate again after
        # opening. A type without a schema is left to the router to refuse.
        for i in range(len(offsets) - 1):
            try:
                core.validate_data(event_type, buffer[offsets[i] : offsets[i + 1]])
            except SchemaNotFound:
                break
            except ValidationError as exc:
                exc.index = i
                raise
        ids = new_event_ids(len(offsets) - 1)
        frames, frame_offsets = seal_e2e(
            buffer,
            offsets,
            recipients=recipients,
            event_ids=ids,
            event_type=event_type,
            source=self._who.name,
            schema_version=0,
        )
        return "e2e", bytes(frames), [int(o) for o in frame_offsets], ids

    def close(self) -> None:
        """Producers hold no resources of their own; present for ``with`` blocks."""

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Router:
    """An embedded event router.

    ``Router()`` keeps everything in memory. ``Router(path)`` keeps every accepted
    event in a durable segment log under ``path`` (a publish returns once its events
    are on disk, per ``fsync``: ``"always"``, ``"batch"`` (group commit, the default)
    or ``"never"``), and durable consumers resume where they stopped.

    Sealing: a durable router seals every payload at rest (AES-256-GCM) unless told
    ``seal="none"``. Keys come from ``keys`` (a :class:`KeyRing` or a key-file path),
    else the ``SEALBUS_KEYS`` environment variable, else a key file created with mode
    0600 *beside* (never inside) the log folder: ``<path>.keys``. ``key_source`` says
    which.

    Size limits: an event's data may be at most ``max_event_bytes`` (1 MiB, NATS's
    default ``max_payload``) and one publish call at most ``max_batch_bytes`` (64 MiB)
    in all; larger ones are refused with :class:`~sealbus.TooLarge` before anything of
    them is copied, validated or stored.

    On disk, an event's data is sealed, and its attributes (``id``, ``source``,
    ``type``, ``time``, ``datacontenttype``, ``dataschema``, ``subject``,
    ``traceparent``, schema version) are stored in the clear, so that the log can be
    routed, filtered and replayed without opening every event. ``seal_subject=True``
    seals the ``subject`` too (a durable, sealing router only); patterns on
    ``subject`` are then refused with :class:`~sealbus.PatternError`.

    Alerts: ``alerts=AlertConfig(...)`` (or ``True`` for the defaults) watches the
    router's own decisions (rate spikes, refusal bursts, new types, lagging consumers,
    failed opens, refused signatures) and publishes ``sealbus.alert.<kind>`` events
    through the router; see :mod:`sealbus.alerts`.

    >>> router = Router()
    >>> checkout = router.principal("checkout")
    >>> router.policy.allow_publish(checkout, "orders.*")
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        fsync: Fsync = "batch",
        seal: Seal = "auto",
        keys: KeyRing | str | os.PathLike[str] | None = None,
        allow_schemaless: bool = False,
        clock: ManualClock | None = None,
        segment_bytes: int | None = None,
        retention_max_age: float | None = None,
        retention_max_bytes: int | None = None,
        retention_respect_consumers: bool = True,
        max_event_bytes: int = 1 << 20,
        max_batch_bytes: int = 64 << 20,
        seal_subject: bool = False,
        audit: bool | None = None,
        audit_checkpoint_every: int = 10_000,
        alerts: AlertConfig | bool | None = None,
    ) -> None:
        if path is not None:
            path = path_arg(path, "path")
        ring, self.key_source = _key_ring(path, seal, keys)
        # A router belongs to the process that opened it (see ``close``).
        self._pid = os.getpid()
        self._core = RouterCore(
            allow_schemaless=allow_schemaless,
            clock=clock,
            path=None if path is None else os.fspath(path),
            fsync=fsync,
            keys=ring,
            segment_bytes=segment_bytes,
            retention_max_age=retention_max_age,
            retention_max_bytes=retention_max_bytes,
            retention_respect_consumers=retention_respect_consumers,
            max_event_bytes=max_event_bytes,
            max_batch_bytes=max_batch_bytes,
            seal_subject=seal_subject,
        )
        self.keys = ring
        self.path = None if path is None else Path(path)
        #: The audit trail (on by default for a durable router; see :mod:`sealbus.audit`).
        self.audit: AuditTrail | None = None
        if audit or (audit is None and path is not None):
            if path is None:
                raise InvalidArgument(
                    "invalid argument: audit: the audit trail lives beside a durable log; give a path",
                    name="audit",
                    reason="needs a durable router",
                )
            from sealbus.identity import Identity

            identity = Identity.load_or_create(Path(path).with_name(Path(path).name + ".identity"))
            self.audit = AuditTrail(trail_dir(path), identity._seed(), checkpoint_every=audit_checkpoint_every)
        self._ledger: Ledger | None = None
        if self.audit is not None:
            self._ledger = Ledger(self)
        self.policy = Policy(self._core, self.audit)
        self.schemas = Schemas(self._core, self.audit)
        self._principals: dict[str, Principal] = {}
        # Counts and latencies per type and principal, once a metrics collector asks.
        self._tally: Tally | None = None
        #: The alert rules (see :mod:`sealbus.alerts`): off unless ``alerts`` is given.
        self.alerts: Alerts | None = None
        if alerts:
            self.alerts = Alerts(self, alerts if isinstance(alerts, AlertConfig) else AlertConfig(), clock)

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return (
            f"Router({where}, sealed={self._core.sealed}, principals={len(self._principals)}, "
            f"subscriptions={len(self._core.subscriptions())})"
        )

    @property
    def durable(self) -> bool:
        return self._core.durable

    def close(self) -> None:
        """Save consumer cursors and close the log. Reopen with ``Router(path)``.

        A router belongs to the process that opened it: in a child forked after it was
        opened, every call that would use it raises :class:`~sealbus.Closed` (the
        child would write the parent's log beside the parent), and ``close`` releases
        nothing and touches nothing, since all it holds is the parent's. Open a router
        in the child instead."""
        if os.getpid() != self._pid:
            return
        aio.close_publishers(self)
        if self.alerts is not None:
            self.alerts.close()
        if self._ledger is not None:
            self._ledger.close()
        self._core.close()
        if self.audit is not None:
            self.audit.record("close")
            self.audit.close()

    def _active_key_id(self) -> str | None:
        return self.keys.active_key_id if self.keys is not None else None

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Save changed consumer cursors now (they are also saved in the background)."""
        self._core.flush()

    def apply_retention(self) -> dict[str, int] | None:
        """Apply the retention policy now (it also runs in the background)."""
        return self._core.apply_retention()

    def replay(
        self,
        who: Principal,
        types: str | Sequence[str],
        *,
        since: int | str | None = None,
        pattern: Mapping[str, Any] | str | None = None,
        batch: int = 1024,
    ) -> Iterator[Event]:
        """Stream stored events in log order: from an offset (``int``), an RFC 3339
        time (``str``) or the beginning, filtered by ``types`` and ``pattern``. The
        reader's permission is checked again for every event, and only what it may
        read is opened."""
        who = self._check(who)
        type_list, text = _types_and_pattern(types, pattern)
        core = self._core.replay(
            who.name,
            who._token,
            type_list,
            since_offset=since if isinstance(since, int) else None,
            since_time=since if isinstance(since, str) else None,
            pattern_json=text,
        )
        if self.audit is not None:
            # Who read the log back, and from where: the events themselves are not listed.
            self.audit.record("replay", principal=who.name, types=type_list, since=since, pattern=text is not None)
        while chunk := core.next_batch(batch):
            yield from chunk

    def principal(self, name: str, *, public_key: bytes | None = None) -> Principal:
        """Create the principal ``name`` (once). Hand the returned object to the code
        that acts as it; the name alone grants nothing. A consumer of end-to-end types
        registers its X25519 ``public_key`` (:class:`sealbus.e2e.ConsumerKeyPair`)."""
        token = self._core.register_principal(name)
        if public_key is not None:
            self._core.set_public_key(name, public_key)
        p = Principal(name, token, id(self))
        self._principals[name] = p
        return p

    def _check(self, who: Principal) -> Principal:
        if not isinstance(who, Principal):
            raise PolicyDenied(
                f"policy denied: {who!r} is not a Principal object; create one with router.principal()",
                principal=str(who),
                action="act",
                event_type="*",
            )
        return who

    def producer(self, who: Principal, *, timeout: float | None = None) -> Producer:
        """A producer publishing as ``who``. ``timeout`` bounds how long a publish may
        wait on a full ``block`` queue (None: no bound)."""
        return Producer(self, self._check(who), timeout)

    def subscribe(
        self,
        who: Principal,
        types: str | Sequence[str],
        *,
        pattern: Mapping[str, Any] | str | None = None,
        name: str | None = None,
        max_pending: int = 10_000,
        on_full: OnFull = "block",
        ack_timeout: float = 30.0,
        max_deliveries: int = 5,
        dlq_capacity: int = 10_000,
        durable: bool = False,
        start: Literal["latest", "earliest"] = "latest",
        max_backlog: int | None = None,
        keypair: ConsumerKeyPair | None = None,
        busy_poll: float = 0.0,
    ) -> Subscription:
        """Subscribe ``who`` to event ``types`` (names or ``*`` globs), optionally
        filtered by an EventBridge ``pattern`` over the CloudEvents JSON form of the
        event (``{"data": {"total": [{"numeric": [">", 100]}]}}``).

        The queue holds at most ``max_pending`` unacknowledged events; when full,
        ``on_full`` says what happens to producers: ``block`` (wait), ``reject``
        (:class:`~sealbus.Backpressure`, events handed back) or ``drop_oldest``.

        ``durable=True`` (a durable router only, ``name`` required) stores the
        consumer's cursor: closed or offline, it is owed every event, and gets them
        when it subscribes again under the same name. Its queue is then a window of
        ``max_pending`` events onto the log; ``max_backlog`` bounds how far producers
        may get ahead of it before ``on_full`` applies (None: disk and retention
        decide). ``start`` says where a new durable consumer begins.

        ``keypair`` opens events sealed end to end for this consumer.

        ``busy_poll`` (seconds, default 0) lets a poll that finds nothing spin that
        long, yielding the CPU between looks, before it sleeps: a consumer that must
        react within microseconds trades a core's worth of CPU for not waiting on the
        operating system to wake its thread (like Linux's ``SO_BUSY_POLL``)."""
        who = self._check(who)
        type_list, text = _types_and_pattern(types, pattern)
        core = self._core.subscribe(
            who.name,
            who._token,
            type_list,
            name=name,
            pattern_json=text,
            max_pending=max_pending,
            on_full=on_full,
            ack_timeout=ack_timeout,
            max_deliveries=max_deliveries,
            dlq_capacity=dlq_capacity,
            durable=durable,
            start=start,
            max_backlog=max_backlog,
            busy_poll=busy_poll,
        )
        if durable and self.audit is not None:
            self.audit.record("consumer", principal=who.name, name=name, types=type_list, start=start)
        if self._ledger is not None:
            self._ledger.watch(core)
        return Subscription(core, keypair=keypair, validate=self._core.validate_data, router=self)

    def counters(self) -> dict[str, int]:
        """Published, routed and refused counts (policy, schema, backpressure).

        ``read_back``: events durable consumers read back from the log because they
        were not in their in-memory window (offline, or too far behind). With a
        durable log, also ``fsyncs``, ``log_records``, ``log_bytes``, ``log_segments``
        and ``events_per_fsync``."""
        return self._core.counters()

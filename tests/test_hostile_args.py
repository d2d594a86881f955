"""Every public function and constructor, called with hostile arguments.

Negative and huge ints (PyO3's own conversion raises the builtin OverflowError),
wrong types (TypeError), NaN and infinities, wrong buffer types, out-of-range
indexes: whatever sealbus raises must be a :class:`sealbus.SealbusError`, so one
``except SealbusError`` catches every refusal, and the process must survive to run
the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sealbus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealbus import (
    AesGcm,
    InvalidArgument,
    InvalidArgumentType,
    KeyRing,
    ManualClock,
    PatternSet,
    Router,
    SchemaRegistry,
    SealbusError,
    Selector,
    audit,
)
from sealbus.audit import AuditTrail
from sealbus.e2e import ConsumerKeyPair
from sealbus.identity import Identity
from sealbus.identity import verify as verify_signature
from sealbus.nats.bridge import Bridge

_ODD = [
    -1,
    -5,
    -(2**63) - 1,
    2**63,
    2**64,
    2**64 + 1,
    2**200,
    -(2**200),
    math.nan,
    math.inf,
    -math.inf,
    -0.5,
    1e308,
    "",
    "x",
    "\ud800",
    b"",
    b"\x00" * 3,
    None,
    True,
    [],
    [-1],
    [2**64],
    ["a", 1],
    {},
    {"a": object()},
    (1, 2),
    object(),
    bytearray(b"ab"),
    memoryview(b"abcdabcd").cast("I"),
    memoryview(b"abcd")[::2],
    1j,
]

hostile = st.one_of(
    st.integers(min_value=0, max_value=len(_ODD) - 1).map(_ODD.__getitem__),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(min_value=-(2**66), max_value=2**66), max_size=4),
)


def _long_wait(v: object) -> bool:
    """A valid timeout that would make a test wait (not hostile, only slow)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v > 0.01


def _huge_size(v: object) -> bool:
    """A valid size that asks for real memory (a request a test has no business making)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v > 100_000


@dataclass
class World:
    """One router with a publisher, a subscriber and a few values to call with."""

    router: Router
    pub: sealbus.Principal
    sub_who: sealbus.Principal
    sub: sealbus.Subscription
    producer: sealbus.Producer
    receipts: sealbus.Receipts
    batch: sealbus.DeliveryBatch
    log: Path
    checkpoint: str
    patterns: PatternSet = field(default_factory=PatternSet)
    registry: SchemaRegistry = field(default_factory=SchemaRegistry)
    aead: AesGcm = field(default_factory=lambda: AesGcm(bytes(32)))
    ring: KeyRing = field(default_factory=KeyRing.generate)
    clock: ManualClock = field(default_factory=ManualClock)
    identity: Identity = field(default_factory=Identity.generate)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    router = Router(allow_schemaless=True)
    pub = router.principal("pub")
    who = router.principal("sub")
    router.policy.allow_publish(pub, "t.*")
    router.policy.allow_subscribe(who, "t.*")
    sub = router.subscribe(who, "t.a", max_pending=1_000_000, on_full="drop_oldest")
    producer = router.producer(pub, timeout=0.0)
    receipts = producer.publish_many("t.a", [{"n": 1}, {"n": 2}])
    batch = sub.poll_batch(10, timeout=1.0)
    # A small audit trail with a signed checkpoint, for the audit functions.
    log = tmp_path_factory.mktemp("hostile") / "log"
    trail = AuditTrail(audit.trail_dir(log), bytes(32), checkpoint_every=4)
    trail.record("publish", ids=["e1"])
    checkpoint = trail.checkpoint()
    trail.close()
    w = World(router, pub, who, sub, producer, receipts, batch, log, checkpoint)
    w.patterns.add("p", {"type": ["t.a"]})
    w.registry.register("t.s", {"type": "object"})
    return w


def _run(coro: Any) -> object:
    """Run one coroutine on a fresh event loop (each call gets its own loop)."""
    return asyncio.run(coro)


def _record(w: World, details: object) -> None:
    trail = AuditTrail(audit.trail_dir(w.log), bytes(32))
    try:
        trail.record("test", value=details)
        # What record accepted, the trail stores (a refusal here would be raised in
        # the syncing thread instead, and lose the entries queued with it).
        trail.flush()
    finally:
        trail.close()


def _bridge(w: World, **changes: Any) -> Bridge:
    """A bridge over a memory router, with one argument replaced (no connection)."""
    kwargs: dict[str, Any] = {
        "router": w.router,
        "servers": "nats://127.0.0.1:1",
        "name": "hostile",
        "identity": w.identity,
        "transit_keys": w.ring,
    }
    kwargs.update(changes)
    return Bridge(**kwargs)


_AAD: dict[str, Any] = {"event_id": "id", "event_type": "t.a", "source": "src", "schema_version": 1}

# (name, call, skip): `call(world, v)` passes the hostile value `v` in one place;
# `skip(v)` leaves out values that are valid and only slow or memory-hungry.
Case = tuple[str, Callable[[World, Any], object], Callable[[object], bool]]
_never: Callable[[object], bool] = lambda v: False  # noqa: E731

CASES: list[Case] = [
    # router construction and administration
    ("Router.fsync", lambda w, v: Router(fsync=v), _never),
    ("Router.seal", lambda w, v: Router(seal=v), _never),
    ("Router.keys", lambda w, v: Router(seal="none", keys=v), _never),
    ("Router.allow_schemaless", lambda w, v: Router(allow_schemaless=v), _never),
    ("Router.clock", lambda w, v: Router(clock=v), _never),
    ("Router.segment_bytes", lambda w, v: Router(segment_bytes=v), _never),
    ("Router.retention_max_age", lambda w, v: Router(retention_max_age=v), _never),
    ("Router.retention_max_bytes", lambda w, v: Router(retention_max_bytes=v), _never),
    ("Router.principal.name", lambda w, v: w.router.principal(v), _never),
    ("Router.principal.public_key", lambda w, v: w.router.principal("pk", public_key=v), _never),
    ("Policy.allow_publish.who", lambda w, v: w.router.policy.allow_publish(v, "t.x"), _never),
    ("Policy.allow_publish.types", lambda w, v: w.router.policy.allow_publish(w.pub, v), _never),
    ("Policy.revoke_subscribe", lambda w, v: w.router.policy.revoke_subscribe(w.sub_who, v), _never),
    ("Policy.require_end_to_end", lambda w, v: w.router.policy.require_end_to_end(v), _never),
    ("Policy.requires_end_to_end", lambda w, v: w.router.policy.requires_end_to_end(v), _never),
    ("Policy.can_publish", lambda w, v: w.router.policy.can_publish(w.pub, v), _never),
    ("Policy.grants", lambda w, v: w.router.policy.grants(v), _never),
    ("Schemas.register.type", lambda w, v: w.router.schemas.register(v, {"type": "object"}), _never),
    ("Schemas.register.schema", lambda w, v: w.router.schemas.register("t.q", v), _never),
    ("Schemas.register.version", lambda w, v: w.router.schemas.register("t.v", {}, version=v), _never),
    (
        "Schemas.register.compatibility",
        lambda w, v: w.router.schemas.register("t.c", {}, compatibility=v),
        _never,
    ),
    ("Schemas.latest_version", lambda w, v: w.router.schemas.latest_version(v), _never),
    # publishing
    ("Router.producer.who", lambda w, v: w.router.producer(v), _never),
    ("Router.producer.timeout", lambda w, v: w.router.producer(w.pub, timeout=v).publish("t.a", 1), _never),
    ("Producer.publish.type", lambda w, v: w.producer.publish(v, 1), _never),
    ("Producer.publish.data", lambda w, v: w.producer.publish("t.a", v), _never),
    ("Producer.publish.version", lambda w, v: w.producer.publish("t.a", 1, version=v), _never),
    ("Producer.publish.timeout", lambda w, v: w.producer.publish("t.a", 1, timeout=v), _never),
    ("Producer.publish.subject", lambda w, v: w.producer.publish("t.a", 1, subject=v), _never),
    ("Producer.publish_many.batch", lambda w, v: w.producer.publish_many("t.a", v), _never),
    ("Producer.publish_raw.buffer", lambda w, v: w.producer.publish_raw("t.a", v, [0, 1]), _never),
    ("Producer.publish_raw.offsets", lambda w, v: w.producer.publish_raw("t.a", b"1", v), _never),
    ("Producer.publish_raw.kind", lambda w, v: w.producer.publish_raw("t.a", b"1", [0, 1], kind=v), _never),
    ("Receipts[i]", lambda w, v: w.receipts[v], _never),
    ("new_event_ids", lambda w, v: sealbus.router.new_event_ids(v), _huge_size),
    # subscribing and consuming
    ("Router.subscribe.who", lambda w, v: w.router.subscribe(v, "t.a").close(), _never),
    ("Router.subscribe.types", lambda w, v: w.router.subscribe(w.sub_who, v).close(), _never),
    ("Router.subscribe.pattern", lambda w, v: w.router.subscribe(w.sub_who, "t.a", pattern=v).close(), _never),
    ("Router.subscribe.name", lambda w, v: w.router.subscribe(w.sub_who, "t.a", name=v).close(), _never),
    (
        "Router.subscribe.max_pending",
        lambda w, v: w.router.subscribe(w.sub_who, "t.a", max_pending=v).close(),
        _huge_size,
    ),
    ("Router.subscribe.on_full", lambda w, v: w.router.subscribe(w.sub_who, "t.a", on_full=v).close(), _never),
    (
        "Router.subscribe.ack_timeout",
        lambda w, v: w.router.subscribe(w.sub_who, "t.a", ack_timeout=v).close(),
        _never,
    ),
    (
        "Router.subscribe.max_deliveries",
        lambda w, v: w.router.subscribe(w.sub_who, "t.a", max_deliveries=v).close(),
        _never,
    ),
    (
        "Router.subscribe.dlq_capacity",
        lambda w, v: w.router.subscribe(w.sub_who, "t.a", dlq_capacity=v).close(),
        _huge_size,
    ),
    ("Router.subscribe.durable", lambda w, v: w.router.subscribe(w.sub_who, "t.a", durable=v).close(), _never),
    ("Router.subscribe.start", lambda w, v: w.router.subscribe(w.sub_who, "t.a", start=v).close(), _never),
    (
        "Router.subscribe.max_backlog",
        lambda w, v: w.router.subscribe(w.sub_who, "t.a", max_backlog=v).close(),
        _never,
    ),
    ("Router.subscribe.keypair", lambda w, v: w.router.subscribe(w.sub_who, "t.a", keypair=v).close(), _never),
    ("Router.subscribe.busy_poll", lambda w, v: w.router.subscribe(w.sub_who, "t.a", busy_poll=v).close(), _never),
    ("Subscription.poll.max", lambda w, v: w.sub.poll(v, 0.0), _never),
    ("Subscription.poll.timeout", lambda w, v: w.sub.poll(1, v), _long_wait),
    ("Subscription.poll_batch.max", lambda w, v: w.sub.poll_batch(v, 0.0), _never),
    ("Subscription.poll_batch.timeout", lambda w, v: w.sub.poll_batch(1, v), _long_wait),
    ("Subscription.ack", lambda w, v: w.sub.ack(v), _never),
    ("Subscription.nack", lambda w, v: w.sub.nack(v), _never),
    ("Subscription.dead_letters.max", lambda w, v: w.sub.dead_letters(v), _never),
    ("Subscription.dead_letters.remove", lambda w, v: w.sub.dead_letters(1, remove=v), _never),
    ("DeliveryBatch[i]", lambda w, v: w.batch[v], _never),
    ("Selector.subscriptions", lambda w, v: Selector(v), _never),
    ("Selector.busy_poll", lambda w, v: Selector([w.sub], busy_poll=v), _never),
    ("Selector.poll.max", lambda w, v: Selector([w.sub]).poll(v, 0.0), _never),
    ("Selector.poll.timeout", lambda w, v: Selector([w.sub]).poll(1, v), _long_wait),
    ("Selector.poll_batch.max", lambda w, v: Selector([w.sub]).poll_batch(v, 0.0), _never),
    ("Selector.poll_batch.timeout", lambda w, v: Selector([w.sub]).poll_batch(1, v), _long_wait),
    ("Router.replay.types", lambda w, v: list(w.router.replay(w.sub_who, v)), _never),
    ("Router.replay.since", lambda w, v: list(w.router.replay(w.sub_who, "t.a", since=v)), _never),
    ("Router.replay.pattern", lambda w, v: list(w.router.replay(w.sub_who, "t.a", pattern=v)), _never),
    ("Router.replay.batch", lambda w, v: list(w.router.replay(w.sub_who, "t.a", batch=v)), _never),
    ("ManualClock.advance", lambda w, v: w.clock.advance(v), _never),
    ("Event.from_json", lambda w, v: sealbus.Event.from_json(v), _never),
    # patterns and schemas
    ("PatternSet.add.name", lambda w, v: w.patterns.add(v, {"type": ["x"]}), _never),
    ("PatternSet.add.pattern", lambda w, v: w.patterns.add("q", v), _never),
    ("PatternSet.remove", lambda w, v: w.patterns.remove(v), _never),
    ("PatternSet.contains", lambda w, v: v in w.patterns, _never),
    ("PatternSet.matches", lambda w, v: w.patterns.matches(v), _never),
    ("PatternSet.matches_batch.events", lambda w, v: w.patterns.matches_batch(v), _never),
    ("PatternSet.matches_batch.offsets", lambda w, v: w.patterns.matches_batch(b"{}{}", v), _never),
    ("PatternSet.matches_batch_indices", lambda w, v: w.patterns.matches_batch_indices(b"{}", v), _never),
    ("test_event_pattern.pattern", lambda w, v: sealbus.test_event_pattern(v, {}), _never),
    ("test_event_pattern.event", lambda w, v: sealbus.test_event_pattern({"a": [1]}, v), _never),
    ("SchemaRegistry.allow_schemaless", lambda w, v: SchemaRegistry(allow_schemaless=v), _never),
    ("SchemaRegistry.register.type", lambda w, v: w.registry.register(v, {}), _never),
    ("SchemaRegistry.register.schema", lambda w, v: w.registry.register("t.r", v), _never),
    ("SchemaRegistry.register.version", lambda w, v: w.registry.register("t.w", {}, version=v), _never),
    ("SchemaRegistry.get.version", lambda w, v: w.registry.get("t.s", version=v), _never),
    ("SchemaRegistry.validate.data", lambda w, v: w.registry.validate("t.s", v), _never),
    ("SchemaRegistry.validate.version", lambda w, v: w.registry.validate("t.s", {}, version=v), _never),
    ("SchemaRegistry.check_batch.buffer", lambda w, v: w.registry.check_batch("t.s", v, [0, 2]), _never),
    ("SchemaRegistry.check_batch.offsets", lambda w, v: w.registry.check_batch("t.s", b"{}", v), _never),
    ("SchemaRegistry.validate_batch.offsets", lambda w, v: w.registry.validate_batch("t.s", b"{}", v), _never),
    # sealing
    ("AesGcm.key", lambda w, v: AesGcm(v), _never),
    ("AesGcm.generate_key", lambda w, v: AesGcm.generate_key(v), _never),
    ("AesGcm.encrypt.nonce", lambda w, v: w.aead.encrypt(v, b"x", None), _never),
    ("AesGcm.encrypt.data", lambda w, v: w.aead.encrypt(bytes(12), v, None), _never),
    ("AesGcm.encrypt.aad", lambda w, v: w.aead.encrypt(bytes(12), b"x", v), _never),
    ("AesGcm.decrypt.data", lambda w, v: w.aead.decrypt(bytes(12), v, None), _never),
    ("AesGcm.encrypt_batch.offsets", lambda w, v: w.aead.encrypt_batch(bytes(12), b"ab", v), _never),
    ("AesGcm.decrypt_batch.nonces", lambda w, v: w.aead.decrypt_batch(v, bytes(16), [0, 16]), _never),
    ("KeyRing.generate.max_seals", lambda w, v: KeyRing.generate(max_seals_per_key=v), _never),
    ("KeyRing.generate.reserve_chunk", lambda w, v: KeyRing.generate(reserve_chunk=v), _never),
    ("KeyRing.from_env", lambda w, v: KeyRing.from_env(v), _never),
    ("KeyRing.retire", lambda w, v: w.ring.retire(v), _never),
    ("KeyRing.seal.data", lambda w, v: w.ring.seal(v, **_AAD), _never),
    ("KeyRing.seal.version", lambda w, v: w.ring.seal(b"x", **{**_AAD, "schema_version": v}), _never),
    ("KeyRing.seal.event_id", lambda w, v: w.ring.seal(b"x", **{**_AAD, "event_id": v}), _never),
    ("KeyRing.open.frame", lambda w, v: w.ring.open(v, **_AAD), _never),
    (
        "KeyRing.seal_batch.offsets",
        lambda w, v: w.ring.seal_batch(b"ab", v, event_ids=["i"], event_type="t", source="s", schema_version=1),
        _never,
    ),
    ("ConsumerKeyPair.from_private_bytes", lambda w, v: ConsumerKeyPair.from_private_bytes(v), _never),
    # size limits and subject sealing
    ("Router.max_event_bytes", lambda w, v: Router(max_event_bytes=v), _never),
    ("Router.max_batch_bytes", lambda w, v: Router(max_batch_bytes=v), _never),
    ("Router.seal_subject", lambda w, v: Router(seal_subject=v), _never),
    # asyncio
    ("Producer.publish_async.data", lambda w, v: _run(w.producer.publish_async("t.a", v)), _never),
    ("Producer.publish_async.version", lambda w, v: _run(w.producer.publish_async("t.a", 1, version=v)), _never),
    ("Producer.publish_async.timeout", lambda w, v: _run(w.producer.publish_async("t.a", 1, timeout=v)), _never),
    ("Producer.publish_async.subject", lambda w, v: _run(w.producer.publish_async("t.a", 1, subject=v)), _never),
    ("Producer.publish_many_async.batch", lambda w, v: _run(w.producer.publish_many_async("t.a", v)), _never),
    ("Subscription.poll_async.max", lambda w, v: _run(w.sub.poll_async(v, 0.0)), _never),
    ("Subscription.poll_async.timeout", lambda w, v: _run(w.sub.poll_async(1, v)), _long_wait),
    ("Subscription.poll_batch_async.max", lambda w, v: _run(w.sub.poll_batch_async(v, 0.0)), _never),
    ("Subscription.poll_batch_async.timeout", lambda w, v: _run(w.sub.poll_batch_async(1, v)), _long_wait),
    ("Selector.poll_async.timeout", lambda w, v: _run(Selector([w.sub]).poll_async(1, v)), _long_wait),
    ("Selector.poll_batch_async.max", lambda w, v: _run(Selector([w.sub]).poll_batch_async(v, 0.0)), _never),
    # the audit trail
    ("audit.verify.log_path", lambda w, v: audit.verify(v), _never),
    ("audit.verify.checkpoint", lambda w, v: audit.verify(w.log, checkpoint=v), _never),
    ("audit.entries.log_path", lambda w, v: list(audit.entries(v)), _never),
    ("audit.prove.event_id", lambda w, v: audit.prove(w.log, v, w.checkpoint), _never),
    ("audit.prove.checkpoint", lambda w, v: audit.prove(w.log, "e1", v), _never),
    ("audit.verify_proof.proof", lambda w, v: audit.verify_proof(v, w.checkpoint), _never),
    (
        "audit.verify_proof.fields",
        lambda w, v: audit.verify_proof(audit.Proof(v, v, v, v), w.checkpoint),
        _never,
    ),
    ("audit.verify_proof.checkpoint", lambda w, v: audit.verify_proof(audit.Proof(0, 1, b"", []), v), _never),
    (
        "AuditTrail.checkpoint_every",
        lambda w, v: AuditTrail(audit.trail_dir(w.log), bytes(32), checkpoint_every=v).close(),
        _never,
    ),
    ("AuditTrail.seed", lambda w, v: AuditTrail(audit.trail_dir(w.log), v).close(), _never),
    ("AuditTrail.record.details", lambda w, v: _record(w, v), _never),
    # identities and the NATS bridge (its constructor connects to nothing)
    ("Identity.from_private_bytes", lambda w, v: Identity.from_private_bytes(v), _never),
    ("Identity.sign", lambda w, v: w.identity.sign(v), _never),
    ("identity.verify", lambda w, v: verify_signature(v, v, v), _never),
    ("Bridge.router", lambda w, v: _bridge(w, router=v), _never),
    ("Bridge.servers", lambda w, v: _bridge(w, servers=v), _never),
    ("Bridge.name", lambda w, v: _bridge(w, name=v), _never),
    ("Bridge.identity", lambda w, v: _bridge(w, identity=v), _never),
    ("Bridge.imports", lambda w, v: _bridge(w, imports=v), _never),
    ("Bridge.trust", lambda w, v: _bridge(w, trust=v), _never),
    ("Bridge.trust.key", lambda w, v: _bridge(w, trust={"peer": v}), _never),
    ("Bridge.stream_replicas", lambda w, v: _bridge(w, stream_replicas=v), _never),
    ("Bridge.max_in_flight", lambda w, v: _bridge(w, max_in_flight=v), _never),
    ("Bridge.fetch_batch", lambda w, v: _bridge(w, fetch_batch=v), _never),
    ("Bridge.publish_timeout", lambda w, v: _bridge(w, publish_timeout=v), _never),
    ("Bridge.tls_ca", lambda w, v: _bridge(w, tls_ca=v), _never),
    ("Bridge.flush", lambda w, v: _bridge(w).flush(v), _long_wait),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v=hostile)
def test_hostile_argument_raises_only_sealbus_errors(world: World, case: Case, v: object) -> None:
    _name, call, skip = case
    if skip(v):
        return
    with contextlib.suppress(SealbusError):
        call(world, v)
    # The router still works after the refusal.
    assert world.router.policy.can_publish(world.pub, "t.a")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_odd_value(world: World, case: Case) -> None:
    """The fixed list of odd values, each one, for every case (hypothesis samples)."""
    _name, call, skip = case
    for v in _ODD:
        if skip(v):
            continue
        with contextlib.suppress(SealbusError):
            call(world, v)


def test_the_examples_from_the_report() -> None:
    router = Router()
    who = router.principal("who")
    router.policy.allow_subscribe(who, "t")
    sub = router.subscribe(who, "t")
    with pytest.raises(InvalidArgument) as info:
        Selector([sub], busy_poll=-1)
    assert info.value.name == "busy_poll"
    with pytest.raises(InvalidArgument, match="out of range"):
        router.subscribe(who, "t", max_pending=-5)
    # Both except clauses work: ValueError for a bad value, TypeError for a bad type.
    with pytest.raises(ValueError):
        router.subscribe(who, "t", max_pending=-5)
    with pytest.raises(InvalidArgumentType) as type_info:
        router.subscribe(who, "t", max_pending="many")
    assert isinstance(type_info.value, TypeError)


def test_index_errors_keep_the_sequence_protocol() -> None:
    router = Router(allow_schemaless=True)
    p = router.principal("p")
    router.policy.allow_publish(p, "t")
    receipts = router.producer(p).publish_many("t", [1, 2, 3])
    with pytest.raises(IndexError):
        receipts[3]
    with pytest.raises(sealbus.IndexOutOfRange):
        receipts[-4]
    assert [r.id for r in receipts] == receipts.ids


def test_a_path_the_file_system_cannot_encode_is_refused(tmp_path: Path) -> None:
    """PyO3's own path conversion panics on a lone surrogate; sealbus refuses it."""
    bad = str(tmp_path / "\ud800")
    for call in (
        lambda: Router(bad),
        lambda: audit.verify(bad),
        lambda: KeyRing.load_or_create(bad),
        lambda: sealbus._sealbus.AuditTrailCore(bad, bytes(32), 1, 0.01),
    ):
        with pytest.raises(InvalidArgument):
            call()
    assert list(tmp_path.iterdir()) == []

"""End-to-end building blocks: ConsumerKeyPair, wrap/unwrap, seal_e2e/open_e2e."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sealbus import IntegrityError, InvalidArgument, KeyNotFound
from sealbus._sealbus import decode_frame
from sealbus.aead import pack, unpack
from sealbus.e2e import (
    ConsumerKeyPair,
    WrappedKey,
    open_e2e,
    seal_e2e,
    unwrap_data_key,
    wrap_context,
    wrap_data_key,
)

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 2}
SHIPPING, ANALYTICS, INTRUDER = (ConsumerKeyPair.generate() for _ in range(3))
ALLOWED = {"shipping": SHIPPING.public_key, "analytics": ANALYTICS.public_bytes}


def _seal(payloads: list[bytes], ids: list[str]) -> tuple[bytes, memoryview]:
    buf, offs = pack(payloads)
    return seal_e2e(buf, offs, recipients=ALLOWED, event_ids=ids, **EV)  # type: ignore[arg-type]


def _open(
    frames: bytes, offs: object, who: ConsumerKeyPair, rid: str, ids: list[str]
) -> list[bytes]:
    out, o = open_e2e(frames, offs, keypair=who, recipient_id=rid, event_ids=ids, **EV)  # type: ignore[arg-type]
    return unpack(out, o)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=600), min_size=1, max_size=20))
def test_every_allowed_consumer_opens(payloads: list[bytes]) -> None:
    ids = [f"e{i}" for i in range(len(payloads))]
    frames, offs = _seal(payloads, ids)
    assert _open(frames, offs, SHIPPING, "shipping", ids) == payloads
    assert _open(frames, offs, ANALYTICS, "analytics", ids) == payloads


def test_router_sees_only_cleartext_attributes() -> None:
    frames, _offs = _seal([b'{"secret": 42}'], ["e1"])
    info = decode_frame(frames)
    assert info["mode"] == "end-to-end" and info["key_id"].startswith("dk-")
    assert sorted(r[0] for r in info["recipients"]) == ["analytics", "shipping"]
    assert b"secret" not in frames


def test_consumer_not_allowed_gets_no_key_and_cannot_open() -> None:
    frames, offs = _seal([b"payload"], ["e1"])
    with pytest.raises(KeyNotFound):
        _open(frames, offs, INTRUDER, "intruder", ["e1"])
    # Holding the ciphertext and someone else's wrapped key is not enough either.
    with pytest.raises(IntegrityError):
        _open(frames, offs, INTRUDER, "shipping", ["e1"])


def test_moved_frame_and_changed_attributes_are_refused() -> None:
    frames, offs = _seal([b"a", b"b"], ["e1", "e2"])
    with pytest.raises(IntegrityError):
        _open(frames, offs, SHIPPING, "shipping", ["e2", "e1"])
    with pytest.raises(IntegrityError):
        open_e2e(
            frames,
            offs,
            keypair=SHIPPING,
            recipient_id="shipping",
            event_ids=["e1", "e2"],
            event_type="orders.placed",
            source="evil",
            schema_version=2,
        )


def test_wrap_is_bound_to_recipient_and_context() -> None:
    dk = bytes(range(32))
    ctx = wrap_context("dk-1", "orders.placed")
    [w] = wrap_data_key(dk, {"shipping": SHIPPING.public_key}, ctx)
    assert unwrap_data_key(w, SHIPPING, ctx) == dk
    with pytest.raises(IntegrityError):
        unwrap_data_key(w, SHIPPING, wrap_context("dk-2", "orders.placed"))
    with pytest.raises(IntegrityError):
        unwrap_data_key(w, SHIPPING, wrap_context("dk-1", "orders.cancelled"))
    with pytest.raises(IntegrityError):
        unwrap_data_key(WrappedKey("analytics", w.ephemeral_public, w.wrapped_key), SHIPPING, ctx)
    with pytest.raises(IntegrityError):
        unwrap_data_key(w, ANALYTICS, ctx)
    [w2] = wrap_data_key(dk, {"shipping": SHIPPING.public_key}, ctx)
    assert w2.ephemeral_public != w.ephemeral_public  # fresh ephemeral per wrap
    with pytest.raises(IntegrityError):  # all-zero (low-order) public key
        wrap_data_key(dk, {"x": bytes(32)}, ctx)
    with pytest.raises(InvalidArgument):
        wrap_data_key(dk, {}, ctx)
    with pytest.raises(InvalidArgument):
        wrap_data_key(dk[:16], {"shipping": SHIPPING.public_key}, ctx)


def test_private_key_never_shown() -> None:
    raw = SHIPPING.private_bytes()
    assert raw.hex() not in repr(SHIPPING)
    assert ConsumerKeyPair.from_private_bytes(raw).public_bytes == SHIPPING.public_bytes
    [w] = wrap_data_key(bytes(32), {"s": SHIPPING.public_key}, b"c")
    assert w.wrapped_key.hex() not in repr(w)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(SHIPPING)
    with pytest.raises(InvalidArgument):
        ConsumerKeyPair.from_private_bytes(b"short")

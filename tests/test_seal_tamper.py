"""Every tamper is refused: a flipped bit anywhere in a frame (header, key id, nonce,
length, ciphertext, tag), changed attributes (AAD), truncation, extension, and a frame
moved to another event. Hypothesis drives payloads, attributes and positions."""

from __future__ import annotations

import struct

import pytest
import sealbus
from hypothesis import given, settings
from hypothesis import strategies as st
from sealbus import FrameError, IntegrityError, KeyNotFound
from sealbus.aead import AesGcm
from sealbus.e2e import ConsumerKeyPair, open_e2e, seal_e2e

RING = sealbus.KeyRing.generate()
RING.rotate()  # two keys: a flipped key-id bit may land on the other valid id
READER = ConsumerKeyPair.generate()

attrs = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=40),
        "event_type": st.text(min_size=1, max_size=40),
        "source": st.text(max_size=40),
        "schema_version": st.integers(0, 2**32 - 1),
    }
)
REFUSED = (IntegrityError, KeyNotFound)  # FrameError and KeyDestroyed are IntegrityErrors


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), ev=attrs)
def test_round_trip(payload: bytes, ev: dict[str, object]) -> None:
    frame = RING.seal(payload, **ev)  # type: ignore[arg-type]
    assert RING.open(frame, **ev) == payload  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200), ev=attrs, pos=st.integers(0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(payload: bytes, ev: dict[str, object], pos: int, bit: int) -> None:
    frame = bytearray(RING.seal(payload, **ev))  # type: ignore[arg-type]
    frame[pos % len(frame)] ^= 1 << bit
    with pytest.raises(REFUSED):
        RING.open(bytes(frame), **ev)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=200),
    ev=attrs,
    other=attrs,
    field=st.sampled_from(["event_id", "event_type", "source", "schema_version"]),
)
def test_changed_attribute_is_refused(
    payload: bytes, ev: dict[str, object], other: dict[str, object], field: str
) -> None:
    frame = RING.seal(payload, **ev)  # type: ignore[arg-type]
    moved = {**ev, field: other[field]}
    if moved == ev:
        return
    with pytest.raises(IntegrityError):
        RING.open(frame, **moved)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=200), ev=attrs, cut=st.integers(0))
def test_truncated_or_extended_frame_is_refused(payload: bytes, ev: dict[str, object], cut: int) -> None:
    frame = RING.seal(payload, **ev)  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        RING.open(frame[: cut % len(frame)], **ev)  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        RING.open(frame + b"\x00", **ev)  # type: ignore[arg-type]


def test_frame_moved_to_another_event_in_a_batch() -> None:
    ev = {"event_type": "orders.placed", "source": "checkout", "schema_version": 1}
    frames, offs = RING.seal_batch(b"aaabbb", [0, 3, 6], event_ids=["e1", "e2"], **ev)  # type: ignore[arg-type]
    a, b = frames[offs[0] : offs[1]], frames[offs[1] : offs[2]]
    swapped = b + a
    with pytest.raises(IntegrityError, match="item 0"):
        RING.open_batch(swapped, [0, len(b), len(b) + len(a)], event_ids=["e1", "e2"], **ev)  # type: ignore[arg-type]


def test_relabelled_key_id_and_mode_are_refused() -> None:
    ev = {"event_id": "e", "event_type": "t", "source": "s", "schema_version": 1}
    frame = bytearray(RING.seal(b"payload", **ev))  # type: ignore[arg-type]
    # Same key id length, another id that exists in the ring: AAD binds the key id.
    ids = RING.key_ids()
    kid = frame[5 : 5 + frame[4]].decode()
    other = next(i for i in ids if i != kid)
    relabelled = bytes(frame[:5]) + other.encode() + bytes(frame[5 + len(kid) :])
    with pytest.raises(IntegrityError):
        RING.open(relabelled, **ev)  # type: ignore[arg-type]
    frame[3] = 2
    with pytest.raises(IntegrityError):
        RING.open(bytes(frame), **ev)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=200), pos=st.integers(0), bit=st.integers(0, 7))
def test_e2e_flipped_bit_is_refused(payload: bytes, pos: int, bit: int) -> None:
    ev = {"event_type": "orders.placed", "source": "checkout", "schema_version": 1}
    frames, _offs = seal_e2e(payload, [0, len(payload)], recipients={"r": READER.public_key}, event_ids=["e"], **ev)  # type: ignore[arg-type]
    frame = bytearray(frames)
    frame[pos % len(frame)] ^= 1 << bit
    with pytest.raises(REFUSED):
        open_e2e(bytes(frame), [0, len(frame)], keypair=READER, recipient_id="r", event_ids=["e"], **ev)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    with pytest.raises(REFUSED):
        RING.open(data, event_id="e", event_type="t", source="s", schema_version=1)
    # A plausible header with a hostile length field.
    hostile = b"SB\x01\x01\x01k" + bytes(12) + struct.pack(">I", 2**32 - 1) + data
    with pytest.raises(FrameError):
        RING.open(hostile, event_id="e", event_type="t", source="s", schema_version=1)


def test_raw_aesgcm_tamper() -> None:
    aes = AesGcm(AesGcm.generate_key())
    ct = bytearray(aes.encrypt(b"n" * 12, b"message", b"aad"))
    for i in range(len(ct) * 8):
        bad = bytearray(ct)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(IntegrityError):
            aes.decrypt(b"n" * 12, bytes(bad), b"aad")
    with pytest.raises(IntegrityError):
        aes.decrypt(b"m" * 12, bytes(ct), b"aad")
    with pytest.raises(IntegrityError):
        aes.decrypt(b"n" * 12, bytes(ct), b"aaD")
    with pytest.raises(IntegrityError):
        aes.decrypt(b"n" * 12, bytes(ct[:-1]), b"aad")

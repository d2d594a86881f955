"""Interop both ways with `cryptography` as an independent oracle, via the byte
layout of docs/FORMAT.md (implemented separately in tests/seal_format.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import seal_format as fmt
import sealbus
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sealbus.aead import AesGcm, pack, unpack
from sealbus.e2e import ConsumerKeyPair, open_e2e, seal_e2e

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 3}


def _ring_keys(path: Path) -> dict[str, bytes]:
    doc = json.loads(path.read_text())
    return {k["id"]: bytes.fromhex(k["key"]) for k in doc["keys"] if "key" in k}


def test_raw_aesgcm_both_ways() -> None:
    key, nonce, aad = os.urandom(32), os.urandom(12), b"hdr"
    for size in (0, 1, 15, 16, 17, 256, 5000):
        msg = os.urandom(size)
        assert AESGCM(key).decrypt(nonce, AesGcm(key).encrypt(nonce, msg, aad), aad) == msg
        assert AesGcm(key).decrypt(nonce, AESGCM(key).encrypt(nonce, msg, aad), aad) == msg
    msgs = [os.urandom(i * 7) for i in range(50)]
    nonces = [os.urandom(12) for _ in msgs]
    buf, offs = pack(msgs)
    ct, cto = AesGcm(key).encrypt_batch(b"".join(nonces), buf, offs, aads=[b"a"] * 50)
    for n, m, c in zip(nonces, msgs, unpack(ct, cto), strict=True):
        assert c == AESGCM(key).encrypt(n, m, b"a")


def test_keyring_frames_open_with_cryptography(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = sealbus.KeyRing.create(path)
    payloads = [os.urandom(i) for i in (0, 1, 64, 540, 4096)]
    ids = [f"e-{i}" for i in range(len(payloads))]
    buf, offs = pack(payloads)
    frames, foffs = ring.seal_batch(buf, offs, event_ids=ids, **EV)
    keys = _ring_keys(path)
    for eid, p, frame in zip(ids, payloads, unpack(frames, foffs), strict=True):
        f = fmt.parse(frame)
        assert (f.version, f.mode, f.key_id) == (1, fmt.AT_REST, ring.active_key_id)
        aad = fmt.aad(fmt.AT_REST, f.key_id, eid, **EV)  # type: ignore[arg-type]
        assert AESGCM(keys[f.key_id]).decrypt(f.nonce, f.sealed, aad) == p


def test_memoryview_inputs_seal_what_they_show(tmp_path: Path) -> None:
    # A contiguous view of a `bytes` is read in place, any other view is copied: both
    # seal exactly the bytes the view shows.
    path = tmp_path / "keys.json"
    ring = sealbus.KeyRing.create(path)
    keys = _ring_keys(path)
    whole = os.urandom(9000)
    for view in (memoryview(whole)[1000:5000], memoryview(whole)[::2], memoryview(bytearray(whole))[7:]):
        shown = bytes(view)
        offs = [0, 10, len(shown)]
        frames, foffs = ring.seal_batch(view, offs, event_ids=["a", "b"], **EV)  # type: ignore[arg-type]
        for eid, (lo, hi), frame in zip("ab", [(0, 10), (10, len(shown))], unpack(frames, foffs), strict=True):
            f = fmt.parse(frame)
            aad = fmt.aad(fmt.AT_REST, f.key_id, eid, **EV)  # type: ignore[arg-type]
            assert AESGCM(keys[f.key_id]).decrypt(f.nonce, f.sealed, aad) == shown[lo:hi]


def test_cryptography_frames_open_with_keyring(tmp_path: Path) -> None:
    key = os.urandom(32)
    doc = {
        "format": "sealbus-keyring",
        "version": 1,
        "active": "ext-1",
        "keys": [{"id": "ext-1", "state": "active", "created": int(time.time()), "key": key.hex()}],
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    ring = sealbus.KeyRing.load(path)
    nonce = os.urandom(12)
    aad = fmt.aad(fmt.AT_REST, "ext-1", "e-9", **EV)  # type: ignore[arg-type]
    frame = fmt.build(fmt.AT_REST, "ext-1", nonce, AESGCM(key).encrypt(nonce, b"hi there", aad))
    assert ring.open(frame, event_id="e-9", **EV) == b"hi there"  # type: ignore[arg-type]


def test_e2e_frames_open_with_cryptography() -> None:
    consumer = ConsumerKeyPair.generate()
    priv = X25519PrivateKey.from_private_bytes(consumer.private_bytes())
    payloads = [b"alpha", b"", os.urandom(1000)]
    ids = ["a", "b", "c"]
    buf, offs = pack(payloads)
    frames, foffs = seal_e2e(buf, offs, recipients={"shipping": consumer.public_key}, event_ids=ids, **EV)  # type: ignore[arg-type]
    for eid, p, frame in zip(ids, payloads, unpack(frames, foffs), strict=True):
        f = fmt.parse(frame)
        assert f.mode == fmt.END_TO_END and f.recipients[0][0] == "shipping"
        dk = fmt.unwrap(
            priv,
            "shipping",
            f.recipients[0][1],
            f.recipients[0][2],
            fmt.wrap_context(f.key_id, EV["event_type"]),
        )  # type: ignore[arg-type]
        aad = fmt.aad(fmt.END_TO_END, f.key_id, eid, **EV)  # type: ignore[arg-type]
        assert AESGCM(dk).decrypt(f.nonce, f.sealed, aad) == p


def test_cryptography_e2e_frames_open_with_sealbus() -> None:
    consumer = ConsumerKeyPair.generate()
    dk, dk_id, nonce = os.urandom(32), "dk-ext", os.urandom(12)
    rec = fmt.wrap(dk, "analytics", consumer.public_key, fmt.wrap_context(dk_id, "orders.placed"))
    aad = fmt.aad(fmt.END_TO_END, dk_id, "e-1", **EV)  # type: ignore[arg-type]
    frame = fmt.build(fmt.END_TO_END, dk_id, nonce, AESGCM(dk).encrypt(nonce, b"{}", aad), [rec])
    out, offs = open_e2e(frame, [0, len(frame)], keypair=consumer, recipient_id="analytics", event_ids=["e-1"], **EV)  # type: ignore[arg-type]
    assert unpack(out, offs) == [b"{}"]

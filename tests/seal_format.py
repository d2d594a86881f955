"""An independent reading of docs/FORMAT.md in plain Python + `cryptography`.

Written from the document, not from sealbus's code, so interop tests use it as an
oracle: what it builds sealbus must open, and what sealbus seals it must open.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SB"
AT_REST, END_TO_END = 1, 2


def lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def aad(
    mode: int, key_id: str, event_id: str, event_type: str, source: str, schema_version: int
) -> bytes:
    return (
        b"sealbus/aad/v1"
        + bytes([1, mode])
        + lp(key_id.encode())
        + lp(event_id.encode())
        + lp(event_type.encode())
        + lp(source.encode())
        + struct.pack(">I", schema_version)
    )


@dataclass
class Parsed:
    version: int
    mode: int
    key_id: str
    nonce: bytes
    sealed: bytes
    recipients: list[tuple[str, bytes, bytes]] = field(default_factory=list)


def parse(frame: bytes) -> Parsed:
    assert frame[:2] == MAGIC
    version, mode, klen = frame[2], frame[3], frame[4]
    key_id = frame[5 : 5 + klen].decode("ascii")
    p = 5 + klen
    nonce = frame[p : p + 12]
    p += 12
    recips = []
    if mode == END_TO_END:
        (count,) = struct.unpack(">H", frame[p : p + 2])
        p += 2
        for _ in range(count):
            n = frame[p]
            rid = frame[p + 1 : p + 1 + n].decode()
            p += 1 + n
            recips.append((rid, frame[p : p + 32], frame[p + 32 : p + 80]))
            p += 80
    (clen,) = struct.unpack(">I", frame[p : p + 4])
    p += 4
    sealed = frame[p:]
    assert len(sealed) == clen + 16
    return Parsed(version, mode, key_id, nonce, sealed, recips)


def build(
    mode: int,
    key_id: str,
    nonce: bytes,
    sealed: bytes,
    recipients: list[tuple[str, bytes, bytes]] | None = None,
) -> bytes:
    kid = key_id.encode("ascii")
    out = MAGIC + bytes([1, mode, len(kid)]) + kid + nonce
    if mode == END_TO_END:
        rs = recipients or []
        out += struct.pack(">H", len(rs))
        for rid, eph, wk in rs:
            r = rid.encode()
            out += bytes([len(r)]) + r + eph + wk
    return out + struct.pack(">I", len(sealed) - 16) + sealed


def wrap_context(data_key_id: str, event_type: str) -> bytes:
    return b"sealbus/e2e/ctx/v1" + lp(data_key_id.encode()) + lp(event_type.encode())


def _kdf(shared: bytes, eph_pub: bytes, rcpt_pub: bytes, info: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(hashes.SHA256(), 44, salt=eph_pub + rcpt_pub, info=info).derive(shared)
    return okm[:32], okm[32:]


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def wrap(data_key: bytes, rid: str, rcpt: X25519PublicKey, ctx: bytes) -> tuple[str, bytes, bytes]:
    info = b"sealbus/e2e/wrap/v1" + lp(rid.encode()) + lp(ctx)
    eph = X25519PrivateKey.generate()
    eph_pub = _raw(eph.public_key())
    k, n = _kdf(eph.exchange(rcpt), eph_pub, _raw(rcpt), info)
    return rid, eph_pub, AESGCM(k).encrypt(n, data_key, info)


def unwrap(priv: X25519PrivateKey, rid: str, eph_pub: bytes, wk: bytes, ctx: bytes) -> bytes:
    info = b"sealbus/e2e/wrap/v1" + lp(rid.encode()) + lp(ctx)
    shared = priv.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    k, n = _kdf(shared, eph_pub, _raw(priv.public_key()), info)
    return AESGCM(k).decrypt(n, wk, info)

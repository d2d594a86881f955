"""A router's Ed25519 signatures (aws-lc-rs in the core) against Wycheproof's vectors
and against ``cryptography`` (OpenSSL) as an independent implementation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sealbus.errors import InvalidArgument
from sealbus.identity import Identity, verify

VECTORS = json.loads((Path(__file__).parent / "vectors" / "wycheproof" / "ed25519_test.json").read_text())
CASES = [
    pytest.param(bytes.fromhex(g["publicKey"]["pk"]), t, id=f"tc{t['tcId']}")
    for g in VECTORS["testGroups"]
    for t in g["tests"]
]


def test_every_vector_is_read() -> None:
    assert len(CASES) == VECTORS["numberOfTests"] == 151


@pytest.mark.parametrize(("pk", "case"), CASES)
def test_wycheproof(pk: bytes, case: dict[str, object]) -> None:
    msg, sig = bytes.fromhex(str(case["msg"])), bytes.fromhex(str(case["sig"]))
    # Wycheproof's "acceptable" would be either; Ed25519's vectors have none.
    assert case["result"] in ("valid", "invalid")
    assert verify(pk, sig, msg) is (case["result"] == "valid"), case["comment"]


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=512), flip=st.integers(0, 64 * 8 - 1))
def test_signatures_agree_with_openssl_both_ways(seed: bytes, message: bytes, flip: int) -> None:
    ours = Identity.from_private_bytes(seed)
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    assert ours.public_bytes == theirs.public_key().public_bytes_raw()
    sig = ours.sign(message)
    # Ed25519 is deterministic: the same seed and message give the same signature.
    assert sig == theirs.sign(message)
    Ed25519PublicKey.from_public_bytes(ours.public_bytes).verify(sig, message)
    assert verify(ours.public_bytes, theirs.sign(message), message)
    bent = bytearray(sig)
    bent[flip // 8] ^= 1 << (flip % 8)
    assert not verify(ours.public_bytes, bytes(bent), message)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(ours.public_bytes).verify(bytes(bent), message)
    assert not verify(ours.public_bytes, sig, message + b"\x00")


@pytest.mark.parametrize("length", [0, 31, 33, 63, 65])
def test_a_key_or_signature_of_the_wrong_length_is_no_signature(length: int) -> None:
    ident = Identity.generate()
    sig = ident.sign(b"m")
    assert not verify(bytes(length), sig, b"m")
    assert not verify(ident.public_bytes, bytes(length), b"m")
    assert not verify(ident.public_bytes, sig + b"\x00", b"m")


def test_a_seed_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="32 bytes"):
        Identity.from_private_bytes(b"\x01" * 31)

"""End-to-end sealing: only the consumers allowed to read a type can open it.

The producer seals a batch under a fresh 256-bit *data key* and wraps that key for
each allowed consumer's X25519 public key (HPKE-style; done in Rust with aws-lc by
:func:`seal_e2e` and :func:`open_e2e`, and here with ``cryptography`` by
:func:`wrap_data_key` and :func:`unwrap_data_key`, which the tests hold the Rust side
to):

- a fresh ephemeral X25519 key pair per wrap; ``shared = X25519(eph, recipient)``;
- ``HKDF-SHA256(ikm=shared, salt=eph_pub || recipient_pub,
  info="sealbus/e2e/wrap/v1" || lp(recipient_id) || lp(context), L=44)`` gives a
  32-byte wrap key and a 12-byte wrap nonce;
- ``wrapped = AES-256-GCM(wrap_key, wrap_nonce, data_key, aad=info)`` (48 bytes).

``context`` binds the wrap to the frame: ``"sealbus/e2e/ctx/v1" || lp(data_key_id) ||
lp(event_type)``. The payloads are sealed into end-to-end frames
(docs/FORMAT.md) whose cleartext header (key id, recipients) and AAD-bound attributes
are all a router needs to route; it never holds the data key. A consumer that is not
among the recipients finds no wrapped key for itself and cannot open the frame even
with the ciphertext in hand::

    shipping = ConsumerKeyPair.generate()
    frames, offs = seal_e2e(buf, offsets, recipients={"shipping": shipping.public_key},
                            event_ids=ids, event_type="orders.placed",
                            source="checkout", schema_version=1)
    payloads, poffs = open_e2e(frames, offs, keypair=shipping, recipient_id="shipping",
                               event_ids=ids, event_type="orders.placed",
                               source="checkout", schema_version=1)
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbus._sealbus import RecipientKey, e2e_open_for, e2e_seal_for
from sealbus.errors import IntegrityError, InvalidArgument, InvalidArgumentType

__all__ = [
    "ConsumerKeyPair",
    "WrappedKey",
    "open_e2e",
    "seal_e2e",
    "unwrap_data_key",
    "wrap_context",
    "wrap_data_key",
]

WRAP_INFO_DOMAIN = b"sealbus/e2e/wrap/v1"
CONTEXT_DOMAIN = b"sealbus/e2e/ctx/v1"
DATA_KEY_LEN = 32
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw

Buffer = bytes | bytearray | memoryview
Offsets = Sequence[int] | memoryview


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _public_bytes(key: X25519PublicKey | bytes) -> bytes:
    if isinstance(key, X25519PublicKey):
        return key.public_bytes(_RAW, _RAW_PUB)
    if isinstance(key, bytes | bytearray) and len(key) == 32:
        return bytes(key)
    raise InvalidArgument(
        "recipient public keys must be X25519PublicKey or 32 raw bytes",
        name="recipients",
        reason="bad public key",
    )


class ConsumerKeyPair:
    """A consumer's X25519 key pair. The private half never appears in a repr."""

    __slots__ = ("_private", "_rust", "public_key")

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._private = private_key
        self.public_key: X25519PublicKey = private_key.public_key()
        self._rust: RecipientKey | None = None

    @property
    def recipient_key(self) -> RecipientKey:
        """The same key pair held in Rust, which opens batches (built once)."""
        if self._rust is None:
            self._rust = RecipientKey(self.private_bytes())
        return self._rust

    @classmethod
    def generate(cls) -> ConsumerKeyPair:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> ConsumerKeyPair:
        """Load a key saved with :meth:`private_bytes` (32 raw bytes)."""
        try:
            return cls(X25519PrivateKey.from_private_bytes(raw))
        except (ValueError, TypeError, BufferError):
            raise InvalidArgument("an X25519 private key is 32 raw bytes", name="raw", reason="bad length") from None

    @property
    def public_bytes(self) -> bytes:
        return self.public_key.public_bytes(_RAW, _RAW_PUB)

    def private_bytes(self) -> bytes:
        """Export the private key (32 raw bytes) for storage: handle with care."""
        return self._private.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())

    def exchange(self, peer: X25519PublicKey) -> bytes:
        return self._private.exchange(peer)

    def __repr__(self) -> str:
        return f"ConsumerKeyPair(public={self.public_bytes.hex()})"

    def __reduce__(self) -> tuple[object, ...]:
        raise InvalidArgumentType(
            "invalid argument: ConsumerKeyPair is not picklable (it holds a private key)",
            name="self",
            reason="not picklable",
        )


@dataclass(frozen=True)
class WrappedKey:
    """One recipient's copy of a data key, as carried in an end-to-end frame."""

    recipient: str
    ephemeral_public: bytes = field(repr=False)
    wrapped_key: bytes = field(repr=False)


def wrap_context(data_key_id: str, event_type: str) -> bytes:
    """The event context a wrapped key is bound to."""
    return CONTEXT_DOMAIN + _lp(data_key_id.encode()) + _lp(event_type.encode())


def _derive(shared: bytes, eph_pub: bytes, rcpt_pub: bytes, info: bytes) -> tuple[bytes, bytes]:
    if shared == bytes(32):
        raise IntegrityError("X25519 produced the all-zero secret", reason="low-order point")
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=eph_pub + rcpt_pub, info=info).derive(shared)
    return okm[:32], okm[32:]


def _info(recipient_id: str, context: bytes) -> bytes:
    rid = recipient_id.encode()
    if not 1 <= len(rid) <= 255:
        raise InvalidArgument(
            f"recipient id {recipient_id!r} must be 1..255 bytes of UTF-8",
            name="recipients",
            reason="bad recipient id",
        )
    return WRAP_INFO_DOMAIN + _lp(rid) + _lp(context)


def wrap_data_key(
    data_key: bytes, recipients: Mapping[str, X25519PublicKey | bytes], context: bytes
) -> list[WrappedKey]:
    """Wrap ``data_key`` for each recipient (fresh ephemeral key per wrap)."""
    if len(data_key) != DATA_KEY_LEN:
        raise InvalidArgument("data keys are 32 bytes", name="data_key", reason="bad length")
    if not recipients:
        raise InvalidArgument("an end-to-end seal needs at least one recipient", name="recipients", reason="empty")
    out = []
    for rid, pub in recipients.items():
        rcpt_pub = _public_bytes(pub)
        info = _info(rid, context)
        eph = X25519PrivateKey.generate()
        eph_pub = eph.public_key().public_bytes(_RAW, _RAW_PUB)
        try:
            shared = eph.exchange(X25519PublicKey.from_public_bytes(rcpt_pub))
        except ValueError:
            raise IntegrityError(
                f"recipient {rid!r} has an invalid X25519 public key", reason="low-order point"
            ) from None
        key, nonce = _derive(shared, eph_pub, rcpt_pub, info)
        out.append(WrappedKey(rid, eph_pub, AESGCM(key).encrypt(nonce, data_key, info)))
    return out


def unwrap_data_key(
    wrapped: WrappedKey, keypair: ConsumerKeyPair, context: bytes, recipient_id: str | None = None
) -> bytes:
    """Recover the data key; :class:`IntegrityError` if it was not wrapped for this
    key pair, recipient id and context."""
    rid = wrapped.recipient if recipient_id is None else recipient_id
    info = _info(rid, context)
    try:
        shared = keypair.exchange(X25519PublicKey.from_public_bytes(wrapped.ephemeral_public))
    except ValueError:
        raise IntegrityError("wrapped key has an invalid ephemeral public key", reason="bad ephemeral key") from None
    key, nonce = _derive(shared, wrapped.ephemeral_public, keypair.public_bytes, info)
    try:
        return AESGCM(key).decrypt(nonce, wrapped.wrapped_key, info)
    except InvalidTag:
        raise IntegrityError(
            f"wrapped data key for {rid!r} does not open with this key pair and context",
            reason="key unwrap failed",
        ) from None


def seal_e2e(
    buffer: Buffer,
    offsets: Offsets,
    *,
    recipients: Mapping[str, X25519PublicKey | bytes],
    event_ids: Sequence[str],
    event_type: str,
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]:
    """Seal a batch of one event type for ``recipients`` under a fresh data key
    wrapped for each (one call into Rust, GIL released).

    Returns ``(frames, offsets)`` in the batch layout of :mod:`sealbus.aead`.
    """
    return e2e_seal_for(
        [(rid, _public_bytes(pub)) for rid, pub in recipients.items()],
        buffer,
        offsets,
        event_ids=event_ids,
        event_type=event_type,
        source=source,
        schema_version=schema_version,
    )


def open_e2e(
    frames: Buffer,
    offsets: Offsets,
    *,
    keypair: ConsumerKeyPair,
    recipient_id: str,
    event_ids: Sequence[str],
    event_type: str | Sequence[str],
    source: str | Sequence[str],
    schema_version: int | Sequence[int],
) -> tuple[bytes, memoryview]:
    """Open end-to-end frames addressed to ``recipient_id``: each data key is
    unwrapped once, then every payload is opened in the same call.

    Raises :class:`KeyNotFound` when a frame carries no wrapped key for this
    recipient, :class:`IntegrityError` when a wrap or a payload fails to verify.
    """
    return e2e_open_for(
        keypair.recipient_key,
        recipient_id,
        frames,
        offsets,
        event_ids=event_ids,
        event_type=event_type,
        source=source,
        schema_version=schema_version,
    )

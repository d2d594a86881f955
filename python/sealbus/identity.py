"""A router's identity: an Ed25519 key pair.

Every message a bridge exports is signed with its router's identity, and an importing
router checks the signature against the public keys it trusts, so that a router that
holds the deployment's shared transit key still cannot speak as another router. The
audit trail's checkpoints are signed with it too.
Signing and checking run in the Rust core on aws-lc-rs, the library that holds our
AES-GCM (about 3x faster than OpenSSL's Ed25519 here, and a bridge signs and checks
every message); ``cryptography`` draws new keys from the operating system and is the
tests' independent oracle. We compose audited primitives and write none of our own.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sealbus._args import blob
from sealbus._args import path as fspath
from sealbus._sealbus import Signer, ed25519_verify
from sealbus.errors import InvalidArgument, InvalidArgumentType, SealbusError

__all__ = ["Identity", "IdentityFileError", "verify"]

_SEED = 32
_FILE_HEADER = b"sealbus-identity-v1\n"


class IdentityFileError(SealbusError):
    """An identity file is malformed or readable by others (``path``, ``reason``)."""


class Identity:
    """An Ed25519 key pair. ``repr`` and errors never show the private key."""

    __slots__ = ("_private", "_public", "_signer")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._signer = Signer(private_key.private_bytes_raw())
        self._public = self._signer.public_bytes

    @classmethod
    def generate(cls) -> Identity:
        """A fresh identity from the operating system's randomness."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> Identity:
        """The identity of a 32-byte Ed25519 seed."""
        if not isinstance(seed, bytes | bytearray) or len(seed) != _SEED:
            raise InvalidArgument("invalid argument: seed: an Ed25519 seed is 32 bytes", name="seed", reason="32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Identity:
        """Load the identity kept at ``path``, or create it there (mode 0600, written
        to a temporary file, fsynced and renamed, so a crash leaves the old file or the
        new one). A file that group or others can read is refused."""
        p = Path(fspath(path, "path"))
        try:
            return cls._load(p)
        except FileNotFoundError:
            pass
        ident = cls.generate()
        raw = ident._private.private_bytes_raw()
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, _FILE_HEADER + raw.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # Another process may have created it meanwhile: the first file wins.
            os.link(tmp, p)
        except FileExistsError:
            os.unlink(tmp)
            return cls._load(p)
        except OSError:
            # A file system without hard links (some FUSE ones): a rename, which
            # replaces a file created in between, so look once more first.
            if p.exists():
                os.unlink(tmp)
                return cls._load(p)
            os.rename(tmp, p)
        else:
            os.unlink(tmp)
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return ident

    @classmethod
    def _load(cls, p: Path) -> Identity:
        fd = os.open(p, os.O_RDONLY)
        try:
            mode = os.fstat(fd).st_mode & 0o777
            if mode & 0o077:
                raise IdentityFileError(
                    f"identity file error: {p}: mode {mode:04o} lets others read the private key; chmod 600",
                    path=str(p),
                    reason="permissions",
                )
            body = os.read(fd, 4096)
        finally:
            os.close(fd)
        if not body.startswith(_FILE_HEADER):
            raise IdentityFileError(
                f"identity file error: {p}: not a sealbus identity file", path=str(p), reason="header"
            )
        text = body[len(_FILE_HEADER) :].strip()
        try:
            seed = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            seed = b""
        if len(seed) != _SEED:
            # Never echo the file's body: it is (a damaged copy of) the private key.
            raise IdentityFileError(
                f"identity file error: {p}: the key is not 64 hex digits", path=str(p), reason="malformed key"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte public key that other routers list in their ``trust``."""
        return self._public

    def _seed(self) -> bytes:
        """The private seed, for the core's signer (the audit trail). Never logged."""
        return self._private.private_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``message``."""
        return self._signer.sign(blob(message, "message"))

    def __repr__(self) -> str:
        return f"Identity(public={self._public.hex()[:16]}..)"

    def __reduce__(self) -> tuple[object, ...]:
        raise InvalidArgumentType(
            "invalid argument: an Identity holds a private key and is not pickled", name="self", reason="not picklable"
        )


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    public_key, signature, message = (
        blob(public_key, "public_key"),
        blob(signature, "signature"),
        blob(message, "message"),
    )
    return ed25519_verify(public_key, signature, message)

"""AES-GCM, the raw primitive, and the batch layout every sealbus batch uses.

:class:`AesGcm` takes and returns what ``cryptography``'s ``AESGCM`` does
(``encrypt(nonce, data, associated_data)`` returns ciphertext with the 16-byte tag
appended; a failed check raises :class:`sealbus.IntegrityError`), so test vectors and
other implementations can be checked against it. Its batch forms seal or open many
items in one call with the GIL released, from one buffer plus offsets::

    buf, offs = pack([b"a", b"bc"])              # b"abc", [0, 1, 3]
    ct, ct_offs = AesGcm(key).encrypt_batch(nonces, buf, offs, aads=[b"x", b"y"])
    AesGcm(key).decrypt_batch(nonces, ct, ct_offs, aads=[b"x", b"y"])

Item ``i`` of a buffer is ``buf[offs[i]:offs[i + 1]]`` (``n + 1`` offsets). Offsets
may be a list of ints or any buffer of 32/64-bit ints (numpy arrays, ``array``);
results come back as ``(bytes, memoryview)`` where the memoryview holds ``n + 1``
unsigned 64-bit offsets (``numpy.asarray`` wraps it without copying).

Each batch result is a fresh ``bytes``. A caller sealing large batches over and over
can keep one writable buffer (``bytearray``, ``mmap``, numpy ``uint8``) and seal into
it instead: ``encrypt_batch_into(out, nonces, buf, offs, ...)`` writes the items to the
front of ``out`` and returns only the offsets. The buffer must be large enough
(``len(buf) + 16 * n`` bytes) and left alone by other threads until the call returns;
a fresh result of tens of MiB costs a kernel page clearing per call that a reused
buffer does not (docs/SEALING.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sealbus._sealbus import AesGcm

__all__ = ["AesGcm", "pack", "unpack"]


def pack(items: Iterable[bytes | bytearray | memoryview]) -> tuple[bytes, list[int]]:
    """Lay out items as one buffer plus ``n + 1`` offsets."""
    parts = [bytes(i) for i in items]
    offsets = [0]
    total = 0
    for p in parts:
        total += len(p)
        offsets.append(total)
    return b"".join(parts), offsets


def unpack(buffer: bytes | bytearray | memoryview, offsets: Sequence[int]) -> list[bytes]:
    """Split a buffer laid out by :func:`pack` (or returned by a batch call)."""
    view = memoryview(buffer)
    return [bytes(view[offsets[i] : offsets[i + 1]]) for i in range(len(offsets) - 1)]

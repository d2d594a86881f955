"""The key ring that seals event payloads at rest, and its key file.

A :class:`KeyRing` holds named AES-256 keys: one active key seals, retired keys still
open, destroyed keys are remembered only as ids so their events fail with
:class:`sealbus.KeyDestroyed` (crypto-shredding). Keys come from a key file (JSON,
mode 0600, refused if group/others can read it), an environment variable, or are
generated::

    ring = KeyRing.load_or_create("/etc/myapp/sealbus.keys")
    frame = ring.seal(b"...", event_id="e-1", event_type="orders.placed",
                      source="checkout", schema_version=1)
    ring.open(frame, event_id="e-1", event_type="orders.placed",
              source="checkout", schema_version=1)
    frames, offs = ring.seal_batch(buf, offsets, event_ids=ids,
                                   event_type="orders.placed", source="checkout",
                                   schema_version=1)
    out = bytearray(len(buf) + 101 * len(ids))     # frames add <= 101 B each; reuse `out`
    foffs = ring.seal_batch_into(out, buf, offsets, event_ids=ids, ...)  # frames: out[:foffs[-1]]
    ring.rotate(); ring.retire(old_id); ring.destroy(old_id)

Each seal is bound to its event (id, type, source, schema version, key id): a frame
opened with other attributes raises :class:`sealbus.IntegrityError`. Nonces never
repeat (random per-process prefix + a counter whose high-water mark is reserved in the
key file before use), and a key is retired automatically after ``max_seals_per_key``
seals (default 2**31). ``repr`` shows key ids and states, never key bytes.

The key file notices its own damage: every key carries a check value and every entry
and the whole document a MAC keyed from the keys (``docs/FORMAT.md``), so a changed
byte, a truncation or an edit is refused at load with :class:`sealbus.KeyFileError`
naming the file and the key, and a router never starts on it.
:func:`inspect_key_file` verifies a file without building a ring (what
``sealbus keys verify`` and ``sealbus keys show`` print); :func:`inspect_key_document`
does the same for bytes in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbus._sealbus import KeyRing, inspect_key_document, inspect_key_file

if TYPE_CHECKING:
    from sealbus._sealbus import KeyFileReport as KeyFileReport

__all__ = ["KeyRing", "inspect_key_document", "inspect_key_file"]

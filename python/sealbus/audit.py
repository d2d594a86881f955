"""The router's audit trail: what it decided, hash-chained, with signed checkpoints.

A durable router keeps its trail in ``<log>/audit/trail.jsonl`` (mode 0600), one JSON
entry a line, each carrying the SHA-256 of the one before; every ``checkpoint_every``
entries a checkpoint entry holds the Merkle root (RFC 9162) of everything before it,
signed with the router's Ed25519 key (``<log>.identity``, beside the log, mode 0600).
Entries record publishes (ids, type, producer, sizes, schema version, key id),
refusals (rule and reason), policy and schema changes, durable consumers, bridge
imports: never a payload or a key.

    verdict = sealbus.audit.verify("/var/lib/shop/log")          # chain and signatures
    checkpoint = router.audit.checkpoint()                        # export and keep it elsewhere
    sealbus.audit.verify("/var/lib/shop/log", checkpoint=checkpoint)   # catches a rollback
    proof = sealbus.audit.prove("/var/lib/shop/log", event_id, checkpoint)
    sealbus.audit.verify_proof(proof, checkpoint)

The CLI: ``sealbus audit verify PATH [--checkpoint FILE]``, ``sealbus audit show PATH``,
``sealbus audit checkpoint PATH``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealbus._args import blob, count, path, text, wrong_type
from sealbus._sealbus import AuditTrailCore, audit_entries, audit_prove, audit_verify, audit_verify_proof
from sealbus.errors import InvalidArgument

__all__ = ["AuditTrail", "Proof", "Verdict", "entries", "prove", "trail_dir", "verify", "verify_proof"]

#: How far the trail's fsync may lag the log's (its writer thread's period, seconds).
SYNC_INTERVAL = 0.01


def trail_dir(log_path: str | os.PathLike[str]) -> Path:
    """Where the trail of the router with this log path lives."""
    return Path(path(log_path, "log_path")) / "audit"


@dataclass(frozen=True)
class Verdict:
    """``ok``; how many ``entries`` and signed ``checkpoints`` verified; the position of
    the ``first_bad`` entry and the ``reason``, when one does not."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad: int | None
    reason: str | None


@dataclass(frozen=True)
class Proof:
    """Entry ``index`` of the first ``size`` entries, and its Merkle audit path."""

    index: int
    size: int
    entry: bytes
    path: list[bytes]


def verify(log_path: str | os.PathLike[str], checkpoint: str | None = None) -> Verdict:
    """Verify the trail of the router at ``log_path``: the chain, every position, every
    checkpoint's root and signature; with an exported ``checkpoint`` (its JSON), also
    that the trail still holds what it signed."""
    return Verdict(**audit_verify(trail_dir(log_path), None if checkpoint is None else text(checkpoint, "checkpoint")))


def entries(
    log_path: str | os.PathLike[str],
    *,
    kind: str | None = None,
    principal: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The trail's entries (up to the first that does not verify), filtered."""
    for line in audit_entries(trail_dir(log_path)):
        e: dict[str, Any] = json.loads(line)
        if kind is not None and e.get("kind") != kind:
            continue
        if principal is not None and e.get("principal") != principal:
            continue
        t = e.get("time", 0)
        if (since_ns is not None and t < since_ns) or (until_ns is not None and t > until_ns):
            continue
        yield e


def prove(log_path: str | os.PathLike[str], event_id: str, checkpoint: str) -> Proof | None:
    """An inclusion proof that the publish of ``event_id`` is in the trail that
    ``checkpoint`` signed, or None if it is not there."""
    p = audit_prove(trail_dir(log_path), text(event_id, "event_id"), text(checkpoint, "checkpoint"))
    return None if p is None else Proof(p[0], p[1], bytes(p[2]), [bytes(h) for h in p[3]])


def verify_proof(proof: Proof, checkpoint: str) -> bool:
    """Whether ``proof`` holds under ``checkpoint`` (and its signature verifies)."""
    if not isinstance(proof, Proof):
        raise wrong_type("proof", "a Proof", proof)
    return audit_verify_proof(proof.index, proof.size, proof.entry, proof.path, text(checkpoint, "checkpoint"))


class AuditTrail:
    """A router's trail writer. :meth:`record` queues an entry and returns; a thread of
    the Rust core appends what was queued and fdatasyncs it every :data:`SYNC_INTERVAL`
    seconds, without the interpreter lock, so a publish waits for neither;
    :meth:`flush` writes and syncs at once."""

    def __init__(self, directory: str | os.PathLike[str], seed: bytes, *, checkpoint_every: int = 10_000) -> None:
        self._core = AuditTrailCore(
            Path(path(directory, "directory")),
            blob(seed, "seed"),
            count(checkpoint_every, "checkpoint_every", 1),
            SYNC_INTERVAL,
        )

    @property
    def public_key(self) -> bytes:
        """The router's Ed25519 public key: it verifies the trail's checkpoints."""
        return bytes(self._core.public_key)

    def record(self, kind: str, **details: Any) -> None:
        """Queue one entry (never pass a payload or a key)."""
        if self._core.record_plain(text(kind, "kind"), time.time_ns(), details):
            return
        try:
            # Not ASCII-escaped, so that a lone surrogate (which the trail's JSON
            # parser refuses, as it must) fails here, not in the trail's writer.
            encoded = json.dumps(details, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
            encoded.encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidArgument(
                f"invalid argument: details: not JSON-serialisable ({exc})", name="details", reason=str(exc)
            ) from None
        self._core.record(text(kind, "kind"), time.time_ns(), encoded)

    def flush(self) -> None:
        """Append what is queued and fdatasync it."""
        self._core.flush()

    def checkpoint(self) -> str:
        """Flush, then sign the Merkle root of the whole trail; returns the checkpoint
        in its exported form (JSON), to be kept where the trail's writer cannot reach."""
        return self._core.checkpoint(time.time_ns())

    def close(self) -> None:
        self._core.close()

    def __len__(self) -> int:
        return len(self._core)

    def __repr__(self) -> str:
        return f"AuditTrail(entries={len(self)}, key={self.public_key.hex()[:16]}..)"

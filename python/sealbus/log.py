"""The durable segment log and consumer cursors (Rust core, ``sealbus._sealbus``).

``SegmentLog`` stores opaque payloads (sealed frames) in segment files with CRC32C
checksums; ``CursorStore`` keeps where each durable consumer stands. ``inspect`` is
what ``sealbus log inspect PATH`` prints: sizes, offsets and counts, never payloads.
The byte layout is specified in ``docs/FORMAT-LOG.md``.
"""

from __future__ import annotations

import os
from typing import Any

from sealbus._sealbus import CursorStore, SegmentLog

__all__ = ["CursorStore", "SegmentLog", "inspect"]


def inspect(
    path: str | os.PathLike[str],
    *,
    verify: bool = False,
    cursors: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Describe the log in ``path`` without changing it.

    The log is opened read-only: a torn tail that recovery would cut is reported under
    ``recovery`` but left on disk. With ``verify=True`` every record's checksums are
    checked and the first damaged one raises :class:`sealbus.LogCorrupted` naming its
    segment and offset. ``cursors`` names a cursor directory to summarise too.
    """
    log = SegmentLog(path, read_only=True)
    try:
        stats = log.stats()
        out: dict[str, Any] = {
            "path": os.fspath(path),
            "first_offset": stats["first_offset"],
            "next_offset": stats["next_offset"],
            "records": stats["records"],
            "bytes": stats["bytes"],
            "segments": log.segments(),
            "recovery": stats["recovery"],
        }
        if verify:
            out["verified"] = log.verify()
    finally:
        log.close()
    if cursors is not None:
        store = CursorStore(cursors, read_only=True)
        summary: dict[str, Any] = {}
        for name in store.consumers():
            cur = store.load(name)
            if cur is None:
                continue
            summary[name] = {
                "committed": cur["committed"],
                "lag": max(0, out["next_offset"] - cur["committed"]),
                "acked_ranges": len(cur["acked"]),
                "in_flight": len(cur["deliveries"]),
                "dead_letters": len(cur["dead_letters"]),
            }
        out["cursors"] = summary
    return out

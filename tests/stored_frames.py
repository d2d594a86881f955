"""Read the sealed frames a router stored, from the raw log (docs/FORMAT-LOG.md,
"Stored event", and docs/FORMAT.md): the (key id, nonce) of every record, so tests can
check that no nonce is ever used twice under one key, across restarts and crashes."""

from __future__ import annotations

import struct
from pathlib import Path

from seal_format import parse
from sealbus.log import SegmentLog


def key_nonces(log_dir: Path) -> list[tuple[int, str, bytes]]:
    """(offset, key id, nonce) of every sealed record, in log order. The log is opened
    read-only: nothing is repaired or changed."""
    log = SegmentLog(log_dir, read_only=True)
    out: list[tuple[int, str, bytes]] = []
    try:
        nxt = log.first_offset
        while recs := log.read(nxt, 4096):
            for off, _ts, payload in recs:
                version, flags = payload[0], payload[1]
                assert version in (1, 2), f"record {off}: stored-event version {version}"
                (attrs_len,) = struct.unpack_from("<I", payload, 3)
                if flags & 1:
                    frame = parse(bytes(payload[7 + attrs_len :]))
                    out.append((off, frame.key_id, frame.nonce))
            nxt = recs[-1][0] + 1
    finally:
        log.close()
    return out


def assert_nonces_unique(frames: list[tuple[int, str, bytes]]) -> None:
    seen: dict[tuple[str, bytes], int] = {}
    for off, key, nonce in frames:
        first = seen.setdefault((key, nonce), off)
        assert first == off, f"records {first} and {off} share key {key} and nonce {nonce.hex()}"

"""A key file restored from an old backup must not let a (key, nonce) pair be used
twice. Routers run as separate processes, seal and store events, restart; then the
key file is put back to an older copy (its nonce high-water marks go backwards) and
more routers run on it. Every stored frame is decoded straight from the log (the
record and stored-event layouts of docs/FORMAT-LOG.md, the frame of docs/FORMAT.md):
no (key id, nonce) pair repeats, although (key id, counter) pairs do, which is what a
construction without the per-process random prefix would have reused."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sealbus
from sealbus._sealbus import SegmentLog, decode_frame

CHILD = r"""
import sys, sealbus
log, keys, run, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ring = sealbus.KeyRing.load_or_create(keys, reserve_chunk=64)
router = sealbus.Router(log, keys=ring, allow_schemaless=True, fsync="batch")
p = router.principal("p"); router.policy.allow_publish(p, "t.*")
prod = router.producer(p)
for b in range(batches):
    prod.publish_many("t.x", [{"run": run, "b": b, "i": i} for i in range(1 + (run * 7 + b * 13) % 40)])
router.close()
"""


def run_router(log: Path, keys: Path, run: int, batches: int = 12) -> None:
    subprocess.run([sys.executable, "-c", CHILD, str(log), str(keys), str(run), str(batches)], check=True, timeout=120)


def stored_nonces(log: Path) -> list[tuple[str, bytes]]:
    """(key id, nonce) of every sealed event in the log, decoded from the raw records."""
    out = []
    with SegmentLog(log, read_only=True) as seg:
        at = seg.first_offset
        while at < seg.next_offset:
            records = seg.read(at, max_records=1000)
            for _offset, _ts, payload in records:
                version, flags, _kind, attrs_len = struct.unpack_from("<BBBI", payload)
                assert version in (1, 2) and flags & 1, "every stored event is sealed"
                info = decode_frame(payload[7 + attrs_len :])
                out.append((info["key_id"], info["nonce"]))
            at = records[-1][0] + 1
    return out


def test_restoring_an_old_key_file_never_reuses_a_nonce(tmp_path: Path) -> None:
    log, keys, backup = tmp_path / "log", tmp_path / "log.keys", tmp_path / "backup.keys"
    run = 0
    for _ in range(3):
        run_router(log, keys, run)
        run += 1
    shutil.copy2(keys, backup)  # the backup an operator took
    marks_then = {k["id"]: k["seals"] for k in sealbus.keys.inspect_key_file(backup)["keys"]}
    for _ in range(3):
        run_router(log, keys, run)
        run += 1
    marks_later = {k["id"]: k["seals"] for k in sealbus.keys.inspect_key_file(keys)["keys"]}
    assert all(marks_later[k] > v for k, v in marks_then.items()), "the key was used after the backup"
    shutil.copy2(backup, keys)  # a restore from it: the marks go back
    for _ in range(3):
        run_router(log, keys, run)
        run += 1

    pairs = stored_nonces(log)
    assert len(pairs) > 500
    repeated = [p for p, n in Counter(pairs).items() if n > 1]
    assert not repeated, f"{len(repeated)} (key, nonce) pairs used twice"
    counters = Counter((k, int.from_bytes(n[8:], "big")) for k, n in pairs)
    assert any(n > 1 for n in counters.values()), "the restore made counters repeat (the test exercises it)"
    prefixes = {n[:8] for _, n in pairs}
    assert len(prefixes) == run, "one random prefix per process start"

"""Append throughput of the durable log: 600-byte records, batches of 1/64/1024, from 1
and 4 threads, under fsync always/batch/never; reports appends/s and events per fsync.

In the suite (``pytest benches --benchmark-disable``) each case runs once, so it is
exercised but never timed as pass/fail. For the table::

    python benches/bench_log.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sealbus.log import SegmentLog

RECORD = 600


def _batch(n: int) -> tuple[bytes, list[int]]:
    buf = os.urandom(RECORD) * n
    return buf, list(range(0, RECORD * n + 1, RECORD))


def run(path: Path, fsync: str, batch: int, threads: int, seconds: float) -> dict[str, Any]:
    """Append for about `seconds`; returns records/s and the log's counters."""
    buf, bounds = _batch(batch)
    stop = time.perf_counter() + seconds
    with SegmentLog(path, fsync=fsync, segment_bytes=256 * 1024 * 1024) as log:

        def work() -> None:
            # At least one append each: a loaded machine may open the log past `stop`.
            log.append_batch(buf, bounds)
            while time.perf_counter() < stop:
                log.append_batch(buf, bounds)

        t0 = time.perf_counter()
        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.perf_counter() - t0
        s = log.stats()
    return {
        "fsync": fsync,
        "batch": batch,
        "threads": threads,
        "records_per_s": s["records_appended"] / elapsed,
        "mb_per_s": s["bytes_appended"] / elapsed / 1e6,
        "appends": s["appends"],
        "records": s["records_appended"],
        "next_offset": s["next_offset"],
        "fsyncs": s["fsyncs"],
        "events_per_fsync": s["events_per_fsync"],
    }


@pytest.mark.parametrize("fsync", ["never", "batch", "always"])
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("threads", [1, 4])
def test_append_throughput(benchmark: Any, tmp_path: Path, fsync: str, batch: int, threads: int) -> None:
    counter = iter(range(10**6))

    def once() -> dict[str, Any]:
        return run(tmp_path / f"l{next(counter)}", fsync, batch, threads, 0.05)

    out = benchmark(once)
    # The counters describe what was stored: every append's records, each exactly once.
    assert out["appends"] > 0
    assert out["records"] == out["appends"] * batch == out["next_offset"]
    if fsync == "never":
        assert out["fsyncs"] == 0
    elif fsync == "always":
        assert out["fsyncs"] >= out["appends"], "always: one fsync per append, never shared"
    else:
        assert 1 <= out["fsyncs"] <= out["appends"], "batch: concurrent appends share fsyncs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="sealbus-bench-log-"))
    print(f"{'fsync':7} {'batch':>5} {'thr':>3} {'records/s':>12} {'MB/s':>8} {'ev/fsync':>9}")
    i = 0
    for fsync in ("never", "batch", "always"):
        for batch in (1, 64, 1024):
            for threads in (1, 4):
                i += 1
                r = run(base / f"run{i}", fsync, batch, threads, args.seconds)
                print(
                    f"{fsync:7} {batch:5} {threads:3} {r['records_per_s']:12,.0f} "
                    f"{r['mb_per_s']:8.1f} {r['events_per_fsync']:9.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Crash harness for the durable log.

A child process (forked, so hundreds of iterations stay cheap) opens the log — which
runs recovery — and appends batches from one or two threads, writing an ``A`` line to
a journal before each call and an ``R`` line with the returned offsets only after the
call returned. The parent kills it with SIGKILL at a random moment (during recovery,
mid-write, mid-fsync, between calls), reopens the log and checks:

- every batch whose call returned is there, exactly once, at the offsets returned;
- nothing else is: every record is an attempted one, intact, and no batch is partial
  (appends are atomic);
- per thread, records are in the order they were appended;
- everything a previous reopen saw is still there.

``SEALBUS_CRASH_ITERS`` sets the iteration count (default 300, ~20 s); ``pytest -m
slow`` runs the long mode (3000 iterations, or the env var).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sealbus.log import SegmentLog

POLICIES = ("batch", "always", "never")


def _payload(run: int, thread: int, seq: int) -> bytes:
    head = f"{run}:{thread}:{seq}:".encode()
    return head + bytes([seq % 251]) * (seq * 7 % 180 + 8)


def _child(path: str, journal: str, run: int, policy: str, threads: int, seed: int) -> None:
    """Append forever; never returns (killed by the parent)."""
    rng = random.Random(seed)
    jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    log = SegmentLog(path, fsync=policy, segment_bytes=64 * 1024, index_interval_bytes=1024)

    def worker(t: int, seed: int) -> None:
        try:
            _append_forever(t, seed)
        except BaseException:
            # A failing append is a test failure: exit (not signalled) so the parent sees it.
            traceback.print_exc()
            os._exit(3)

    def _append_forever(t: int, seed: int) -> None:
        r = random.Random(seed)
        seq = 0
        while True:
            k = r.choice((1, 1, 2, 5, 17))
            parts = [_payload(run, t, seq + i) for i in range(k)]
            bounds = [0]
            for p in parts:
                bounds.append(bounds[-1] + len(p))
            os.write(jfd, f"A {run} {t} {seq} {k}\n".encode())
            offs = log.append_batch(b"".join(parts), bounds)
            # Only after the call returned: this batch is acknowledged.
            os.write(jfd, f"R {run} {t} {seq} {k} {offs[0]}\n".encode())
            seq += k

    ts = [threading.Thread(target=worker, args=(t, rng.random()), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


@dataclass
class _State:
    attempted: dict[tuple[int, int, int], int] = field(default_factory=dict)  # batch -> k
    returned: dict[tuple[int, int, int], int] = field(default_factory=dict)  # batch -> offset
    seen: dict[tuple[int, int, int], int] = field(default_factory=dict)  # record -> offset


def _read_journal(journal: Path, st: _State) -> None:
    if not journal.exists():
        return
    # A SIGKILL during the journal's own write can leave an unterminated last line:
    # that write happened before the append was called (or after it returned, for
    # an "R" line), so dropping it only treats the batch as unacknowledged.
    *lines, _torn_tail = journal.read_text().split("\n")
    for line in lines:
        parts = line.split()
        if parts[0] == "A":
            run, t, seq, k = map(int, parts[1:5])
            st.attempted[(run, t, seq)] = k
        elif parts[0] == "R":
            run, t, seq, k, off = map(int, parts[1:6])
            st.returned[(run, t, seq)] = off


def _check(path: Path, st: _State) -> int:
    with SegmentLog(path) as log:
        recs: list[tuple[int, int, bytes]] = []
        nxt = log.first_offset
        while True:
            got = log.read(nxt, 4096)
            if not got:
                break
            recs.extend(got)
            nxt = got[-1][0] + 1
        assert nxt == log.next_offset or not recs
        log.verify()
    # Map every attempted record to its batch.
    batch_of: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    for (run, t, seq), k in st.attempted.items():
        for i in range(k):
            batch_of[(run, t, seq + i)] = (run, t, seq)
    now: dict[tuple[int, int, int], int] = {}
    last_seq: dict[tuple[int, int], int] = {}
    for off, _ts, payload in recs:
        run_s, t_s, seq_s, _ = payload.split(b":", 3)
        key = (int(run_s), int(t_s), int(seq_s))
        assert payload == _payload(*key), f"record at {off} is damaged"
        assert key in batch_of, f"record {key} at {off} was never appended"
        assert key not in now, f"record {key} stored twice"
        now[key] = off
        order_key = (key[0], key[1])
        assert last_seq.get(order_key, -1) < key[2], f"record {key} out of order"
        last_seq[order_key] = key[2]
    # Appends are atomic: a batch is all there, consecutive, or not at all.
    present = {batch_of[k] for k in now}
    for b in present:
        run, t, seq = b
        offs = [now.get((run, t, seq + i)) for i in range(st.attempted[b])]
        assert None not in offs, f"batch {b} is partial: {offs}"
        assert offs == list(range(offs[0], offs[0] + len(offs))), f"batch {b} not contiguous"
    # Every acknowledged batch is there, where its call said.
    for b, off in st.returned.items():
        assert now.get(b) == off, f"acknowledged batch {b} at {off} is missing"
    # Nothing a previous reopen saw has gone.
    for k, off in st.seen.items():
        assert now.get(k) == off, f"record {k} at {off} was lost after a later crash"
    st.seen = now
    return len(recs)


def _run(tmp_path: Path, iterations: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    totals = {"iterations": 0, "acknowledged_batches": 0, "records": 0, "kills_before_first_ack": 0}
    st = _State()
    log_dir = tmp_path / "log-0"
    journal = tmp_path / "journal-0"
    for run in range(iterations):
        if run % 20 == 0:  # a fresh log now and then keeps each check small
            totals["acknowledged_batches"] += len(st.returned)
            st = _State()
            log_dir = tmp_path / f"log-{run}"
            journal = tmp_path / f"journal-{run}"
        policy = POLICIES[run % 3]
        threads = 1 + (run % 2)
        before = len(st.returned)
        pid = os.fork()
        if pid == 0:  # child
            try:
                _child(str(log_dir), str(journal), run, policy, threads, rng.random())
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(3)
        # Kill at a random moment: sometimes during open/recovery, mostly mid-stream.
        r = rng.random()
        time.sleep(0.0 if r < 0.1 else rng.uniform(0.0, 0.003) if r < 0.25 else rng.uniform(0.0, 0.04))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"child exited by itself: {status}"
        _read_journal(journal, st)
        totals["records"] = _check(log_dir, st)
        if len(st.returned) == before:
            totals["kills_before_first_ack"] += 1
        totals["iterations"] += 1
    totals["acknowledged_batches"] += len(st.returned)
    return totals


def _iterations(default: int) -> int:
    return int(os.environ.get("SEALBUS_CRASH_ITERS", default))


@pytest.mark.timeout(300)
def test_sigkill_loses_no_acknowledged_append(tmp_path: Path) -> None:
    totals = _run(tmp_path, _iterations(300), seed=1)
    # The harness must actually have killed writers that had acknowledged appends.
    assert totals["acknowledged_batches"] > totals["iterations"]
    assert totals["kills_before_first_ack"] < totals["iterations"]


def _selects_slow(markexpr: str) -> bool:
    """Whether the ``-m`` expression asks for slow tests: true for it with the slow
    mark, false without (a substring test took ``-m "not slow"`` for a yes)."""
    from _pytest.mark.expression import Expression

    if not markexpr:
        return False
    expr = Expression.compile(markexpr)
    return expr.evaluate(lambda name, **_: name == "slow") and not expr.evaluate(lambda name, **_: False)


def test_long_mode_switch_reads_the_mark_expression() -> None:
    assert _selects_slow("slow") and _selects_slow("slow and not nats")
    assert not _selects_slow("not slow") and not _selects_slow("") and not _selects_slow("nats or not slow")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_long_mode(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not _selects_slow(request.config.getoption("-m") or ""):
        pytest.skip("long mode: run with -m slow")
    totals = _run(tmp_path, _iterations(3000), seed=2)
    print(f"\nlong mode: {totals}")  # the figures for the closing note (-s shows them)
    assert totals["acknowledged_batches"] > totals["iterations"]

"""Memory figures from /proc (Linux), without psutil, and percentiles without numpy."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import threading
from collections.abc import Iterator, Sequence


def rss_bytes(pid: int | str = "self") -> int | None:
    """The resident set size of ``pid`` (``VmRSS``), or None where /proc cannot say
    (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    # "VmRSS:     123456 kB"
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time of ``pid`` (all its threads) so far, from /proc/<pid>/stat.
    On a shared machine CPU per event says more about efficiency than wall time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
        # Fields after the ")" closing the command name: utime and stime are 14 and 15.
        fields = text[text.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def release_memory() -> None:
    """Give freed memory back to the OS between scenarios, so one scenario's peak does
    not inflate the next one's RSS. glibc keeps freed arenas otherwise."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


# prctl(2) options: the calling thread's timer slack, in nanoseconds.
_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30
# The latency pacers' timer slack: their sleeps end within 1 µs of the send time.
PACER_SLACK_NS = 1_000


@contextlib.contextmanager
def timer_slack(ns: int) -> Iterator[bool]:
    """Let this thread's sleeps end within ``ns`` of their deadline (Linux), restoring
    the old slack after. Yields whether it took effect.

    Linux lets a normal thread's timer fire up to 50 µs late so that wake-ups can be
    batched. A pacer that sleeps between sends 100 µs apart then wakes up to half an
    interval late and catches up with a send right after: the offered load arrives in
    pairs, not at the stated rate. Load generators set the slack of their pacing
    thread for that reason; only this thread's timers change."""
    prctl = None
    name = ctypes.util.find_library("c")
    if name is not None:
        with contextlib.suppress(OSError, AttributeError):  # no prctl: not Linux
            prctl = ctypes.CDLL(name).prctl
    old = prctl(_PR_GET_TIMERSLACK, 0, 0, 0, 0) if prctl is not None else -1
    # prctl takes unsigned longs: pass them as such, not as C ints.
    if prctl is None or old < 0 or prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
        yield False
        return
    try:
        yield True
    finally:
        prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(old), 0, 0, 0)


class RssSampler:
    """Samples a process's RSS on a background thread and keeps the peak. Reading
    /proc every ``interval`` seconds costs a few microseconds of GIL, negligible
    beside what it measures."""

    def __init__(self, pid: int | str = "self", interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = rss_bytes(pid) or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sealbus-bench-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        r = rss_bytes(self.pid)
        if r is not None and r > self.peak:
            self.peak = r

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of already sorted values, nearest rank (no
    interpolation: a p99 is a latency some event really had)."""
    if not sorted_values:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least 1
    return float(sorted_values[int(rank) - 1])


def weighted_percentile(pairs: Sequence[tuple[int, int]], q: float) -> float:
    """Percentile of values given as ``(value, count)`` pairs, nearest rank: used
    where many events share one latency (a batch published at one instant and
    delivered in one poll)."""
    total = sum(c for _, c in pairs)
    if total == 0:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    rank = max(1, -(-total * q // 100))
    seen = 0
    for value, count in sorted(pairs):
        seen += count
        if seen >= rank:
            return float(value)
    return float(max(v for v, _ in pairs))


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

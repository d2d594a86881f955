"""The core's worker pool: named threads, a little below the host's priority, and
never a change to the process's own threads (see rust/sealbus-py/src/pool.rs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")

# Runs in a fresh interpreter (the pool is built once, when the module loads), at a
# chosen starting nice, and reports every thread's name and nice.
PROBE = textwrap.dedent(
    """
    import json, os, sys, threading
    os.nice(int(sys.argv[1]))
    import sealbus
    from sealbus.aead import AesGcm
    # A batch large enough to be split across the pool.
    key = AesGcm(AesGcm.generate_key())
    n, size = 256, 16384
    key.encrypt_batch(os.urandom(12 * n), bytes(n * size), list(range(0, n * size + 1, size)))
    threads = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            threads[tid] = (f.read().strip(), os.getpriority(os.PRIO_PROCESS, int(tid)))
    main = threading.get_native_id()
    print(json.dumps({"main": threads.pop(str(main))[1], "threads": list(threads.values())}))
    """
)


def probe(start_nice: int, env: dict[str, str] | None = None) -> tuple[int, list[tuple[str, int]]]:
    full = {k: v for k, v in os.environ.items() if k != "SEALBUS_POOL_NICE"}
    full.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(start_nice)], env=full, capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    return got["main"], [tuple(t) for t in got["threads"]]


def pool(threads: list[tuple[str, int]]) -> list[int]:
    return [nice for name, nice in threads if name.startswith("sealbus-pool-")]


def test_pool_threads_are_named_and_run_five_steps_below_the_host() -> None:
    main, threads = probe(0)
    nices = pool(threads)
    assert nices, threads
    assert set(nices) == {5}
    assert main == 0  # the process's own thread is left as it was


def test_pool_priority_is_relative_to_the_host_and_capped() -> None:
    main, threads = probe(5)
    assert main == 5
    assert set(pool(threads)) == {10}
    main, threads = probe(18)
    assert set(pool(threads)) == {19}


def test_pool_nice_can_be_set_or_switched_off() -> None:
    _, threads = probe(0, {"SEALBUS_POOL_NICE": "0"})
    assert set(pool(threads)) == {0}
    _, threads = probe(0, {"SEALBUS_POOL_NICE": "2"})
    assert set(pool(threads)) == {2}
    # Out of range or not a number: clamped, or the default.
    _, threads = probe(0, {"SEALBUS_POOL_NICE": "-5"})
    assert set(pool(threads)) == {0}
    _, threads = probe(0, {"SEALBUS_POOL_NICE": "lots"})
    assert set(pool(threads)) == {5}

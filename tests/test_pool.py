"""The core's worker pool: built on first use, named threads, a little below the
host's priority, and never a change to the process's own threads (see
rust/sealbus-core/src/pool.rs and rust/sealbus-py/src/pool.rs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")

# Runs in a fresh interpreter (the pool is built on first use), at a chosen starting
# nice, and reports every thread's name and nice. A pool thread names itself and runs
# the priority hook once it is scheduled, which on a loaded machine can come after the
# batch that built the pool is done: so the report waits (up to 20 s) until every
# thread but the main one is a pool thread at the nice the test expects.
PROBE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    os.nice(int(sys.argv[1]))
    want = int(sys.argv[2])
    import sealbus
    from sealbus.aead import AesGcm
    # A batch large enough to be split across the pool.
    key = AesGcm(AesGcm.generate_key())
    n, size = 256, 16384
    key.encrypt_batch(os.urandom(12 * n), bytes(n * size), list(range(0, n * size + 1, size)))
    main = threading.get_native_id()
    until = time.monotonic() + 20
    while True:
        threads = {}
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/comm") as f:
                threads[tid] = (f.read().strip(), os.getpriority(os.PRIO_PROCESS, int(tid)))
        mine = threads.pop(str(main))[1]
        done = threads and all(n.startswith("sealbus-pool-") and p == want for n, p in threads.values())
        if done or time.monotonic() > until:
            break
        time.sleep(0.01)
    print(json.dumps({"main": mine, "threads": list(threads.values())}))
    """
)


def probe(start_nice: int, want: int, env: dict[str, str] | None = None) -> tuple[int, list[tuple[str, int]]]:
    full = {k: v for k, v in os.environ.items() if k != "SEALBUS_POOL_NICE"}
    full.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(start_nice), str(want)],
        env=full,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    got = json.loads(out.stdout)
    return got["main"], [tuple(t) for t in got["threads"]]


def pool(threads: list[tuple[str, int]]) -> list[int]:
    return [nice for name, nice in threads if name.startswith("sealbus-pool-")]


def test_pool_threads_are_named_and_run_five_steps_below_the_host() -> None:
    main, threads = probe(0, 5)
    nices = pool(threads)
    assert nices, threads
    assert set(nices) == {5}
    assert main == 0  # the process's own thread is left as it was


def test_pool_priority_is_relative_to_the_host_and_capped() -> None:
    main, threads = probe(5, 10)
    assert main == 5
    assert set(pool(threads)) == {10}
    main, threads = probe(18, 19)
    assert set(pool(threads)) == {19}


def test_pool_nice_can_be_set_or_switched_off() -> None:
    _, threads = probe(0, 0, {"SEALBUS_POOL_NICE": "0"})
    assert set(pool(threads)) == {0}
    _, threads = probe(0, 2, {"SEALBUS_POOL_NICE": "2"})
    assert set(pool(threads)) == {2}
    # Out of range or not a number: clamped, or the default.
    _, threads = probe(0, 0, {"SEALBUS_POOL_NICE": "-5"})
    assert set(pool(threads)) == {0}
    _, threads = probe(0, 5, {"SEALBUS_POOL_NICE": "lots"})
    assert set(pool(threads)) == {5}


# Imports sealbus, looks at its threads, then forks: the child must be able to use
# the pool (it would hang on a pool built before the fork, whose threads it lacks).
FORK = textwrap.dedent(
    """
    import os, sys, time
    import sealbus
    from sealbus.aead import AesGcm

    def pool_threads():
        names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
        return [n for n in names if n.startswith("sealbus-pool-")]

    assert pool_threads() == [], pool_threads()
    pid = os.fork()
    if pid == 0:
        key = AesGcm(AesGcm.generate_key())
        n, size = 256, 16384
        sealed, _ = key.encrypt_batch(os.urandom(12 * n), bytes(n * size), list(range(0, n * size + 1, size)))
        # The pool's threads name themselves once scheduled: give them time.
        until = time.monotonic() + 20
        while not pool_threads() and time.monotonic() < until:
            time.sleep(0.01)
        os._exit(0 if len(sealed) == n * (size + 16) and pool_threads() else 1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_the_pool_is_built_on_first_use_so_a_fork_after_import_can_use_it() -> None:
    out = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# Uses the pool, then forks: the child has none of the pool's threads (fork copies
# only the calling thread), so its parallel work must run on its own thread rather
# than wait for workers that do not exist: a large seal (checked against the
# parent's) and a large validated publish.
FORK_AFTER_USE = textwrap.dedent(
    """
    import os, sys
    import sealbus
    from sealbus.aead import AesGcm

    key = AesGcm(AesGcm.generate_key())
    n, size = 256, 16384
    nonces, data = os.urandom(12 * n), os.urandom(n * size)
    offsets = list(range(0, n * size + 1, size))
    sealed, _ = key.encrypt_batch(nonces, data, offsets)  # builds the pool here
    batch = [{"i": i} for i in range(4096)]
    pid = os.fork()
    if pid == 0:
        ok = key.encrypt_batch(nonces, data, offsets)[0] == sealed
        # A router is opened in the process that uses it (README).
        router = sealbus.Router()
        router.schemas.register("t.a", {"type": "object", "required": ["i"]})
        shop = router.principal("shop")
        router.policy.allow_publish(shop, ["t.a"])
        ok = ok and len(router.producer(shop).publish_many("t.a", batch)) == len(batch)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_child_forked_after_the_pool_was_built_does_its_parallel_work_itself() -> None:
    out = subprocess.run([sys.executable, "-c", FORK_AFTER_USE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

"""Medians and ratios for the sealing benchmarks, as a table (see docs/SEALING.md).

    python benches/seal_report.py [--repeats 7] [--full]

For each payload size and batch size: KeyRing.seal_batch (a fresh `bytes` per call),
KeyRing.seal_batch_into (into one `bytearray` kept across the calls, as a caller who
reuses its buffer does), KeyRing.open_batch and AesGcm.encrypt_batch against a loop
over `cryptography`'s AESGCM.encrypt measured in the same run, and `openssl speed -evp
aes-256-gcm -bytes SIZE` (one core) at each size, measured in the same run right
before that size's rows. The last two columns compare CPU time (every thread of the
process) per call instead of wall time: loop / seal and loop / into, above 1 when
sealbus spends less of the machine than the loop on the same payloads.

The loop (the baseline of the ratios) does the batch's work: it seals each of the
batch's `n` payloads (separate `bytes` objects, as a Python caller holds them) and
keeps the `n` results in a list until the call ends, as the batch's result keeps its
frames. Beside it, `1 payload` is the older, cheaper yardstick: one payload sealed
`n` times, each result dropped at once, so it never leaves the cache and its memory
is reused from call to call (a lower bound on the loop's cost, not the same work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sealbus
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sealbus.aead import AesGcm

sys.path.insert(0, str(Path(__file__).parent))
from openssl_ceiling import openssl_rate

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 1}
AAD = b"sealbus/aad/v1 + ~50 bytes of attrs.."


def median_seconds(fns: list[Callable[[], object]], repeats: int) -> tuple[list[float], list[float]]:
    """Median wall time and median CPU time (all of this process's threads) of each of
    `fns`, timed in interleaved rounds (one call of each per round), so that load
    from other processes falls on all of them alike. The CPU time is what a call
    costs the machine whatever else runs on it."""
    for fn in fns:
        fn()  # warm up
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, wall, cpu in zip(fns, walls, cpus, strict=True):
            c, t = time.process_time(), time.perf_counter()
            fn()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return [statistics.median(w) for w in walls], [statistics.median(c) for c in cpus]


def measure(ring: sealbus.KeyRing, aes: AesGcm, ref: AESGCM, size: int, n: int, reps: int, ossl: float | None) -> str:
    buf = os.urandom(size) * n
    offs = list(range(0, size * n + 1, size))
    ids = [f"evt-{i:08d}" for i in range(n)]
    nonces = os.urandom(12 * n)
    nlist = [nonces[i * 12 : i * 12 + 12] for i in range(n)]
    payload = buf[:size]
    pairs = [(nlist[i], buf[offs[i] : offs[i + 1]]) for i in range(n)]
    frames, foffs = ring.seal_batch(buf, offs, event_ids=ids, **EV)

    def loop() -> list[bytes]:
        # Every payload of the batch, every result kept until the call returns.
        enc = ref.encrypt
        return [enc(nonce, p, AAD) for nonce, p in pairs]

    def loop_one() -> None:
        enc = ref.encrypt
        for nonce in nlist:
            enc(nonce, payload, AAD)

    out = bytearray(len(frames))
    (t_seal, t_into, t_open, t_aes, t_loop, t_one), (c_seal, c_into, _, _, c_loop, _) = median_seconds(
        [
            lambda: ring.seal_batch(buf, offs, event_ids=ids, **EV),
            lambda: ring.seal_batch_into(out, buf, offs, event_ids=ids, **EV),
            lambda: ring.open_batch(frames, foffs, event_ids=ids, **EV),
            lambda: aes.encrypt_batch(nonces, buf, offs, aads=AAD),
            loop,
            loop_one,
        ],
        reps,
    )
    mb = size * n / 1e6
    vs_ossl = f"{mb / t_seal / ossl:>8.2f}x" if ossl else f"{'-':>9}"
    return (
        f"{size:>6} {n:>6} | {mb / t_seal:>10.0f} {mb / t_into:>10.0f} {mb / t_open:>10.0f} {mb / t_aes:>11.0f} "
        f"{mb / t_loop:>11.0f} {mb / t_one:>9.0f} {ossl or 0:>8.0f} | {t_loop / t_seal:>8.2f}x "
        f"{t_loop / t_into:>8.2f}x {t_loop / t_open:>8.2f}x {t_one / t_seal:>8.2f}x {vs_ossl} | "
        f"{c_loop / c_seal:>8.2f}x {c_loop / c_into:>8.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--full", action="store_true", help="include batches over 64 MiB")
    ap.add_argument("--sizes", default="64,256,1024,4096,16384,65536")
    ap.add_argument("--batches", default="1,64,1024,65536")
    a = ap.parse_args()
    ring = sealbus.KeyRing.generate()
    aes = AesGcm(AesGcm.generate_key())
    ref = AESGCM(AESGCM.generate_key(bit_length=256))
    print(
        f"{'size':>6} {'batch':>6} | {'seal MB/s':>10} {'into MB/s':>10} {'open MB/s':>10} {'AesGcm MB/s':>11} "
        f"{'crypto loop':>11} {'1 payload':>9} {'openssl':>8} | {'seal/loop':>9} {'into/loop':>9} {'open/loop':>9} "
        f"{'seal/1 pl':>9} {'seal/ossl':>9} | "
        f"{'cpu s/l':>9} {'cpu i/l':>9}"
    )
    for size in (int(x) for x in a.sizes.split(",")):
        rate = openssl_rate(size, 3)
        ossl = rate / 1e6 if rate is not None else None
        for n in (int(x) for x in a.batches.split(",")):
            if size * n > 64 * 2**20 and not a.full:
                continue
            reps = a.repeats if size * n < 2**24 else max(3, a.repeats // 2)
            print(measure(ring, aes, ref, size, n, reps, ossl), flush=True)


if __name__ == "__main__":
    main()

"""Ed25519 as the bridge uses it: signing and checking one message's signed bytes
(a domain, the subject and the SHA-256 of the body: 80 bytes), sealbus's (aws-lc-rs
in the core) beside `cryptography`'s (OpenSSL) in the same run, the baseline.

    pytest benches/bench_ed25519.py --benchmark-only --benchmark-group-by=param:op
    python benches/bench_ed25519.py [--repeats 7]      # medians and ratios
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sealbus.identity import Identity, verify

MESSAGE = b"sealbus-bridge-v1\x00sealbus.orders.placed\x00" + bytes(range(32)) + b"\x00" * 6
SEED = bytes(range(32))


def _calls() -> dict[tuple[str, str], Callable[[], object]]:
    ours = Identity.from_private_bytes(SEED)
    theirs = Ed25519PrivateKey.from_private_bytes(SEED)
    their_public = theirs.public_key()
    sig = ours.sign(MESSAGE)
    return {
        ("sign", "sealbus"): lambda: ours.sign(MESSAGE),
        ("sign", "cryptography"): lambda: theirs.sign(MESSAGE),
        ("verify", "sealbus"): lambda: verify(ours.public_bytes, sig, MESSAGE),
        ("verify", "cryptography"): lambda: their_public.verify(sig, MESSAGE),
    }


@pytest.mark.parametrize("who", ["sealbus", "cryptography"])
@pytest.mark.parametrize("op", ["sign", "verify"])
def test_ed25519(benchmark: Any, op: str, who: str) -> None:
    call = _calls()[(op, who)]
    benchmark(call)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--number", type=int, default=2000)
    a = ap.parse_args()
    calls = _calls()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in calls}
    for _ in range(a.repeats):
        for k, call in calls.items():  # interleaved, so that both see the same machine
            times[k].append(timeit.timeit(call, number=a.number) / a.number * 1e6)
    for op in ("sign", "verify"):
        ours = statistics.median(times[(op, "sealbus")])
        theirs = statistics.median(times[(op, "cryptography")])
        print(f"{op:<6} sealbus {ours:7.1f} µs  cryptography {theirs:7.1f} µs  {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()

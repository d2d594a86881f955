"""Sealing and opening throughput: sealbus batches beside a loop over `cryptography`'s
AESGCM in the same run (the baseline), and openssl's single-core ceiling.

    pytest benches/bench_seal.py --benchmark-only            # timed
    pytest benches/bench_seal.py --benchmark-disable         # exercised once (the suite)
    SEALBUS_BENCH_FULL=1 pytest benches/bench_seal.py ...    # adds 65,536 x 16 KiB (1 GiB)
    python benches/seal_report.py                            # medians + ratios table

Sizes 64 B, 256 B, 1 KiB, 16 KiB; batches of 1, 64, 1,024, 65,536.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import sealbus
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from openssl_ceiling import parse_rate
from sealbus.aead import AesGcm

SIZES = [64, 256, 1024, 16384]
BATCHES = [1, 64, 1024, 65536]
FULL = os.environ.get("SEALBUS_BENCH_FULL") == "1"
EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 1}


def _cases() -> list[Any]:
    out = []
    for size in SIZES:
        for n in BATCHES:
            marks = []
            if size * n > 64 * 2**20 and not FULL:
                marks.append(pytest.mark.skip(reason="1 GiB case: set SEALBUS_BENCH_FULL=1"))
            out.append(pytest.param(size, n, id=f"{size}B-x{n}", marks=marks))
    return out


def _workload(size: int, n: int) -> tuple[bytes, list[int], list[str]]:
    buf = os.urandom(size) * n
    return buf, list(range(0, size * n + 1, size)), [f"evt-{i:08d}" for i in range(n)]


@pytest.mark.parametrize(("size", "n"), _cases())
def test_keyring_seal(benchmark: Any, size: int, n: int) -> None:
    ring = sealbus.KeyRing.generate()
    buf, offs, ids = _workload(size, n)
    benchmark.extra_info.update(bytes=size * n, items=n)
    _frames, foffs = benchmark(ring.seal_batch, buf, offs, event_ids=ids, **EV)
    assert len(foffs) == n + 1


@pytest.mark.parametrize(("size", "n"), _cases())
def test_keyring_seal_into_reused_buffer(benchmark: Any, size: int, n: int) -> None:
    ring = sealbus.KeyRing.generate()
    buf, offs, ids = _workload(size, n)
    out = bytearray(len(buf) + 101 * n)  # one buffer, kept across the timed calls
    benchmark.extra_info.update(bytes=size * n, items=n)
    foffs = benchmark(ring.seal_batch_into, out, buf, offs, event_ids=ids, **EV)
    assert ring.open_batch(bytes(out[: foffs[-1]]), foffs, event_ids=ids, **EV)[0] == buf


@pytest.mark.parametrize(("size", "n"), _cases())
def test_keyring_open(benchmark: Any, size: int, n: int) -> None:
    ring = sealbus.KeyRing.generate()
    buf, offs, ids = _workload(size, n)
    frames, foffs = ring.seal_batch(buf, offs, event_ids=ids, **EV)
    benchmark.extra_info.update(bytes=size * n, items=n)
    out, _ = benchmark(ring.open_batch, frames, foffs, event_ids=ids, **EV)
    assert out == buf


@pytest.mark.parametrize(("size", "n"), _cases())
def test_aesgcm_encrypt_batch(benchmark: Any, size: int, n: int) -> None:
    key = AesGcm.generate_key()
    aes = AesGcm(key)
    buf, offs, _ = _workload(size, n)
    nonces = os.urandom(12 * n)
    benchmark.extra_info.update(bytes=size * n, items=n)
    aad = b"sealbus/aad/v1 + ~50 bytes of attrs.."
    out, outs = benchmark(aes.encrypt_batch, nonces, buf, offs, aads=aad)
    # `cryptography` is the oracle: the first and the last item open with it.
    oracle = AESGCM(key)
    for i in (0, n - 1):
        ct = out[outs[i] : outs[i + 1]]
        assert oracle.decrypt(nonces[12 * i : 12 * i + 12], ct, aad) == buf[offs[i] : offs[i + 1]]


@pytest.mark.parametrize(("size", "n"), _cases())
def test_cryptography_loop_baseline(benchmark: Any, size: int, n: int) -> None:
    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    buf, offs, _ = _workload(size, n)
    # The batch's payloads as a Python caller holds them: one `bytes` each.
    pairs = [(os.urandom(12), buf[offs[i] : offs[i + 1]]) for i in range(n)]
    aad = b"sealbus/aad/v1 + ~50 bytes of attrs.."
    benchmark.extra_info.update(bytes=size * n, items=n)

    def loop() -> list[bytes]:
        enc = aes.encrypt
        return [enc(nonce, p, aad) for nonce, p in pairs]

    out = benchmark(loop)
    # The baseline is only a yardstick if it does the same work: each of the n
    # payloads sealed, every result kept (as the batch's one result keeps them).
    assert len(out) == n
    assert aes.decrypt(pairs[-1][0], out[-1], aad) == pairs[-1][1]


def test_openssl_output_parser() -> None:
    sample = (
        "The 'numbers' are in 1000s of bytes per second processed.\n"
        "type            256 bytes\nAES-256-GCM     559371.27k\n"
    )
    assert parse_rate(sample) == pytest.approx(559_371_270.0)
    with pytest.raises(ValueError):
        parse_rate("nothing here")

"""Sealing into a caller's reusable buffer (`KeyRing.seal_batch_into`,
`AesGcm.encrypt_batch_into`), checked against `cryptography` and the frame layout of
docs/FORMAT.md (tests/seal_format.py), and against the fresh-`bytes` batch calls."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import seal_format as fmt
import sealbus
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sealbus.aead import AesGcm, pack, unpack

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 2}
SENTINEL = 0xA5


def _keys(path: Path) -> dict[str, bytes]:
    doc = json.loads(path.read_text())
    return {k["id"]: bytes.fromhex(k["key"]) for k in doc["keys"] if "key" in k}


def _counter(frame: bytes) -> tuple[str, bytes, int]:
    f = fmt.parse(frame)
    return f.key_id, f.nonce, int.from_bytes(f.nonce[8:], "big")


def test_frames_in_a_reused_buffer_open_with_cryptography(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = sealbus.KeyRing.create(path)
    keys = _keys(path)
    out = bytearray([SENTINEL]) * 200_000
    seen: set[tuple[str, bytes]] = set()
    for round_ in range(3):
        payloads = [os.urandom(s) for s in (0, 1, 17, 4096, 20_000 + round_)]
        ids = [f"r{round_}-{i}" for i in range(len(payloads))]
        buf, offs = pack(payloads)
        foffs = ring.seal_batch_into(out, buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
        assert len(foffs) == len(payloads) + 1 and foffs[0] == 0
        end = foffs[-1]
        frames = bytes(out[:end])
        for eid, p, frame in zip(ids, payloads, unpack(frames, foffs), strict=True):
            f = fmt.parse(frame)
            aad = fmt.aad(fmt.AT_REST, f.key_id, eid, **EV)  # type: ignore[arg-type]
            assert AESGCM(keys[f.key_id]).decrypt(f.nonce, f.sealed, aad) == p
            seen.add((f.key_id, f.nonce))
        assert ring.open_batch(frames, foffs, event_ids=ids, **EV)[0] == buf  # type: ignore[arg-type]
        if round_ == 0:
            # Bytes past the batch are left as they were.
            assert out[end:] == bytearray([SENTINEL]) * (len(out) - end)
    assert len(seen) == 15, "a (key, nonce) pair was used twice"


def test_same_layout_as_seal_batch_and_counters_continue() -> None:
    ring = sealbus.KeyRing.generate()
    buf, offs = pack([b"abc", b"", b"defgh"])
    ids = ["a", "b", "c"]
    frames, foffs = ring.seal_batch(buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
    out = np.zeros(len(frames) + 7, dtype=np.uint8)
    ioffs = ring.seal_batch_into(out, buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
    assert list(ioffs) == list(foffs)
    into = out[: ioffs[-1]].tobytes()
    last = _counter(unpack(frames, foffs)[-1])
    firsts = [_counter(f) for f in unpack(into, ioffs)]
    assert [c for _, _, c in firsts] == [last[2] + 1, last[2] + 2, last[2] + 3]
    assert ring.open_batch(into, ioffs, event_ids=ids, **EV)[0] == buf  # type: ignore[arg-type]


def test_too_small_is_refused_before_any_nonce_is_used() -> None:
    ring = sealbus.KeyRing.generate()
    buf, offs = pack([b"x" * 100, b"y" * 50])
    ids = ["a", "b"]
    frames, foffs = ring.seal_batch(buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
    need = len(frames)
    small = bytearray([SENTINEL]) * (need - 1)
    with pytest.raises(sealbus.InvalidArgument, match=rf"out: .*{need}"):
        ring.seal_batch_into(small, buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
    assert small == bytearray([SENTINEL]) * (need - 1), "nothing written"
    after = ring.seal(b"z", event_id="c", **EV)  # type: ignore[arg-type]
    assert _counter(after)[2] == _counter(unpack(frames, foffs)[-1])[2] + 1
    exact = bytearray(need)
    assert ring.seal_batch_into(exact, buf, offs, event_ids=ids, **EV)[-1] == need  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        (b"\0" * 4096, "read-only"),
        (memoryview(bytearray(8192))[::2], "contiguous"),
        ([0] * 4096, "writable buffer"),
        (np.zeros(1024, dtype=np.uint32), "writable buffer"),
    ],
)
def test_bad_out_is_refused_with_a_typed_error(out: object, reason: str) -> None:
    ring = sealbus.KeyRing.generate()
    aes = AesGcm(AesGcm.generate_key())
    with pytest.raises(sealbus.InvalidArgument, match=reason):
        ring.seal_batch_into(out, b"ab", [0, 2], event_ids=["a"], **EV)  # type: ignore[arg-type]
    with pytest.raises(sealbus.InvalidArgument, match=reason):
        aes.encrypt_batch_into(out, bytes(12), b"ab", [0, 2])  # type: ignore[arg-type]


def test_input_and_out_may_be_the_same_buffer() -> None:
    ring = sealbus.KeyRing.generate()
    payloads = [os.urandom(300) for _ in range(4)]
    buf, offs = pack(payloads)
    shared = bytearray(buf) + bytearray(400)
    foffs = ring.seal_batch_into(shared, shared, offs, event_ids=list("abcd"), **EV)  # type: ignore[arg-type]
    frames = bytes(shared[: foffs[-1]])
    assert ring.open_batch(frames, foffs, event_ids=list("abcd"), **EV)[0] == buf  # type: ignore[arg-type]


def test_encrypt_batch_into_matches_encrypt_batch_and_cryptography() -> None:
    key = AesGcm.generate_key()
    aes = AesGcm(key)
    msgs = [os.urandom(i * 53) for i in range(40)]
    nonces = [os.urandom(12) for _ in msgs]
    buf, offs = pack(msgs)
    ct, cto = aes.encrypt_batch(b"".join(nonces), buf, offs, aads=b"ctx")
    out = bytearray([SENTINEL]) * (len(ct) + 10)
    o = aes.encrypt_batch_into(out, b"".join(nonces), buf, offs, aads=b"ctx")
    assert list(o) == list(cto)
    assert bytes(out[: len(ct)]) == ct
    assert out[len(ct) :] == bytearray([SENTINEL]) * 10
    for n, m, c in zip(nonces, msgs, unpack(bytes(out), o), strict=True):
        assert AESGCM(key).decrypt(n, c, b"ctx") == m
    small = bytearray([SENTINEL]) * (len(ct) - 1)
    with pytest.raises(sealbus.InvalidArgument, match=rf"out: .*{len(ct)}"):
        aes.encrypt_batch_into(small, b"".join(nonces), buf, offs, aads=b"ctx")
    assert small == bytearray([SENTINEL]) * (len(ct) - 1)


def test_large_batch_split_across_threads_into_a_reused_buffer() -> None:
    # Large enough for the work to be shared across the pool (several MiB).
    ring = sealbus.KeyRing.generate()
    size, n = 16384, 512
    buf = os.urandom(size * n)
    offs = list(range(0, size * n + 1, size))
    ids = [f"e{i}" for i in range(n)]
    out = bytearray(size * n + 128 * n)
    nonces: set[bytes] = set()
    for _ in range(2):
        foffs = ring.seal_batch_into(out, buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
        frames = bytes(out[: foffs[-1]])
        assert ring.open_batch(frames, foffs, event_ids=ids, **EV)[0] == buf  # type: ignore[arg-type]
        nonces.update(fmt.parse(f).nonce for f in unpack(frames, foffs))
    assert len(nonces) == 2 * n


def test_out_cannot_be_resized_while_a_call_writes_it() -> None:
    # The export held for the call pins the bytearray: another thread's resize fails
    # with BufferError instead of moving the memory under the cipher.
    ring = sealbus.KeyRing.generate()
    size, n = 65536, 64
    buf = os.urandom(size * n)
    offs = list(range(0, size * n + 1, size))
    ids = [f"e{i}" for i in range(n)]
    out = bytearray(size * n + 101 * n)
    refused: list[str] = []
    stop = threading.Event()

    def resize() -> None:
        while not stop.is_set():
            try:
                out.extend(b"x")
                del out[-1:]
            except BufferError as e:
                refused.append(str(e))

    t = threading.Thread(target=resize)
    t.start()
    try:
        for _ in range(2000):
            foffs = ring.seal_batch_into(out, buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
            if refused:
                break
    finally:
        stop.set()
        t.join()
    assert refused, "no resize was attempted during a call"
    assert ring.open_batch(bytes(out[: foffs[-1]]), foffs, event_ids=ids, **EV)[0] == buf  # type: ignore[arg-type]

"""KeyRing: rotation, retirement, destruction (crypto-shredding), persistence, the
environment, nonce uniqueness over many batches and restarts, and no key bytes in any
repr, str, exception or file other than the key file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sealbus
from sealbus import IntegrityError, InvalidArgument, KeyDestroyed, KeyNotFound, KeyRing, SealError
from sealbus._sealbus import decode_frame
from sealbus.aead import pack, unpack

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 1}


def seal(ring: KeyRing, data: bytes, eid: str = "e") -> bytes:
    return ring.seal(data, event_id=eid, **EV)  # type: ignore[arg-type]


def open_(ring: KeyRing, frame: bytes, eid: str = "e") -> bytes:
    return ring.open(frame, event_id=eid, **EV)  # type: ignore[arg-type]


def key_hex(path: Path) -> list[str]:
    return [k["key"] for k in json.loads(path.read_text())["keys"] if "key" in k]


def test_rotation_keeps_old_events_readable() -> None:
    ring = KeyRing.generate()
    k1 = ring.active_key_id
    f1 = seal(ring, b"one")
    k2 = ring.rotate()
    assert k2 != k1 and ring.active_key_id == k2
    f2 = seal(ring, b"two")
    assert decode_frame(f2)["key_id"] == k2
    assert open_(ring, f1) == b"one" and open_(ring, f2) == b"two"
    states = {k["id"]: k["state"] for k in ring.keys()}  # noqa: SIM118 (KeyRing.keys() is not a dict view)
    assert states == {k1: "retired", k2: "active"}


def test_retire_active_rotates_and_retired_still_opens() -> None:
    ring = KeyRing.generate()
    k1 = ring.active_key_id
    f1 = seal(ring, b"x")
    ring.retire(k1)
    assert ring.active_key_id != k1
    assert decode_frame(seal(ring, b"y"))["key_id"] != k1
    assert open_(ring, f1) == b"x"


def test_destroy_shreds(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.create(path)
    k1 = ring.active_key_id
    old_hex = key_hex(path)[0]
    f1 = seal(ring, b"secret")
    ring.rotate()
    f2 = seal(ring, b"kept")
    ring.destroy(k1)
    with pytest.raises(KeyDestroyed) as exc:
        open_(ring, f1)
    assert exc.value.key_id == k1  # type: ignore[attr-defined]
    assert isinstance(exc.value, IntegrityError)
    assert open_(ring, f2) == b"kept"
    assert old_hex not in path.read_text()
    reloaded = KeyRing.load(path)
    with pytest.raises(KeyDestroyed):
        open_(reloaded, f1)
    assert open_(reloaded, f2) == b"kept"
    with pytest.raises(KeyNotFound):
        reloaded.destroy("k-doesnotexist")


def test_destroying_the_active_key_rotates_first() -> None:
    ring = KeyRing.generate()
    k1 = ring.active_key_id
    ring.destroy(k1)
    assert ring.active_key_id != k1
    assert open_(ring, seal(ring, b"ok")) == b"ok"


def test_persistence_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    frame = seal(ring, b"durable")
    again = KeyRing.load_or_create(path)
    assert again.key_ids() == ring.key_ids()
    assert open_(again, frame) == b"durable"
    with pytest.raises(SealError, match="already exists"):
        KeyRing.create(path)
    path.chmod(0o640)
    with pytest.raises(SealError, match="chmod 600"):
        KeyRing.load(path)


def test_generated_ring_can_be_persisted(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    frame = seal(ring, b"later")
    ring.persist(tmp_path / "k.json")
    assert ring.path == tmp_path / "k.json"
    assert open_(KeyRing.load(tmp_path / "k.json"), frame) == b"later"


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("SB_TEST_KEY", key.hex())
    a, b = KeyRing.from_env("SB_TEST_KEY"), KeyRing.from_env("SB_TEST_KEY")
    assert a.active_key_id == b.active_key_id and a.active_key_id.startswith("env-")
    assert open_(b, seal(a, b"shared")) == b"shared"
    assert key.hex() not in repr(a) and key.hex() not in a.active_key_id
    # a whole key-ring document works too
    path = tmp_path / "k.json"
    KeyRing.create(path)
    monkeypatch.setenv("SB_TEST_RING", path.read_text())
    assert KeyRing.from_env("SB_TEST_RING").key_ids() == KeyRing.load(path).key_ids()
    monkeypatch.setenv("SB_TEST_KEY", "zz" + key.hex()[2:])
    with pytest.raises(SealError) as exc:
        KeyRing.from_env("SB_TEST_KEY")
    assert key.hex()[2:] not in str(exc.value)
    with pytest.raises(SealError, match="not set"):
        KeyRing.from_env("SB_TEST_UNSET_VARIABLE")


def test_auto_rotation_well_before_the_budget() -> None:
    ring = KeyRing.generate(max_seals_per_key=100)
    first = ring.active_key_id
    buf, offs = pack([b"x"] * 30)
    ids = [str(i) for i in range(30)]
    for _ in range(10):
        ring.seal_batch(buf, offs, event_ids=ids, **EV)  # type: ignore[arg-type]
    assert ring.active_key_id != first
    assert all(k["seals"] <= 100 for k in ring.keys())  # noqa: SIM118
    with pytest.raises(SealError, match="per-key budget"):
        big, boffs = pack([b"x"] * 101)
        ring.seal_batch(big, boffs, event_ids=[str(i) for i in range(101)], **EV)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KeyRing.generate(max_seals_per_key=2**32 + 1)
    assert KeyRing.generate().max_seals_per_key == 2**31


def test_nonces_never_repeat_over_batches_and_restarts(tmp_path: Path) -> None:
    """Count (key id, nonce) pairs over many batches, rotations and restarts (some
    without a clean shutdown); every pair must be unique and, per key, every counter
    after a restart above all counters before it."""
    path = tmp_path / "keys.json"
    seen: set[tuple[str, bytes]] = set()
    last_counter: dict[str, int] = {}
    total = 0
    for restart in range(8):
        ring = KeyRing.load_or_create(path, max_seals_per_key=5_000, reserve_chunk=700)
        restart_floor = dict(last_counter)
        for b in range(12):
            n = 1 + (restart * 131 + b * 57) % 400
            buf, offs = pack([bytes([b]) * (b % 5)] * n)
            frames, foffs = ring.seal_batch(
                buf,
                offs,
                event_ids=[f"{restart}-{b}-{i}" for i in range(n)],
                **EV,  # type: ignore[arg-type]
            )
            for frame in unpack(frames, foffs):
                info = decode_frame(frame)
                pair = (info["key_id"], info["nonce"])
                assert pair not in seen, f"nonce reused: {pair}"
                seen.add(pair)
                counter = int.from_bytes(info["nonce"][8:], "big")
                assert counter >= restart_floor.get(info["key_id"], -1)
                last_counter[info["key_id"]] = max(last_counter.get(info["key_id"], 0), counter)
                total += 1
        if restart % 2:
            ring.rotate()
        del ring  # no explicit save: reservations are already on disk ("crash")
    assert len(seen) == total > 10_000
    assert len(last_counter) > 2  # rotations happened (manual and on budget)


def test_no_key_bytes_in_repr_str_or_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.create(path)
    ring.rotate()
    secrets_hex = key_hex(path)
    texts = [repr(ring), str(ring), str(ring.keys()), repr(sealbus.AesGcm(bytes(32)))]
    for bad in (
        lambda: ring.open(b"SB\x01\x01\x02zz" + bytes(30), event_id="e", **EV),
        lambda: open_(ring, seal(ring, b"x"), "other"),
        lambda: KeyRing.load(tmp_path / "missing.json"),
    ):
        with pytest.raises(sealbus.SealbusError) as exc:
            bad()  # type: ignore[no-untyped-call]
        texts += [str(exc.value), repr(exc.value)]
    for t in texts:
        for h in secrets_hex:
            assert h not in t and h.upper() not in t
    assert "redacted" in texts[3]
    assert "KeyRing(active=" in texts[0]


# ---- key files that notice their own damage ------------------------------------------


def damaged_ring_file(tmp_path: Path) -> tuple[Path, list[str]]:
    """A key file as a router leaves it: three keys (active, retired, destroyed), seals
    made, marks reserved. Returns the path and the live keys' hex."""
    path = tmp_path / "keys.json"
    ring = KeyRing.create(path, reserve_chunk=500)
    seal(ring, b"a")
    ring.rotate()
    seal(ring, b"b")
    doomed = ring.rotate()
    ring.rotate()
    ring.destroy(doomed)
    seal(ring, b"c")
    return path, key_hex(path)


def meaning(report: sealbus.keys.KeyFileReport) -> object:
    return (report["active"], report["max_seals_per_key"], report["keys"])


def test_every_single_byte_change_and_truncation_is_refused(tmp_path: Path) -> None:
    """Each byte in turn (three other values each: a bit flip, a case flip, and a
    space) and every truncation: refused with KeyFileError naming the file and no key
    hex, or (whitespace for whitespace) the same keys. The Rust core test
    (`keyfile::tests::every_byte_changed_and_every_truncation`) tries all 255 values."""
    path, secrets_hex = damaged_ring_file(tmp_path)
    good = path.read_bytes()
    want = meaning(sealbus.keys.inspect_key_document(good))
    refused = same = 0

    def check(variant: bytes, where: str) -> None:
        nonlocal refused, same
        try:
            got = sealbus.keys.inspect_key_document(variant, "keys.json")
        except sealbus.KeyFileError as exc:
            assert exc.path == "keys.json"
            text = f"{exc} {exc!r} {exc.reason}"
            assert not any(h[i : i + 12] in text.lower() for h in secrets_hex for i in range(0, 53, 4)), text
            refused += 1
            return
        assert meaning(got) == want, where
        assert variant.strip() == good.strip() or variant.split() == good.split(), where
        same += 1

    for i, b in enumerate(good):
        for v in {b ^ 0x01, b ^ 0x20, 0x20} - {b}:
            check(good[:i] + bytes([v]) + good[i + 1 :], f"byte {i}: {b:#x} -> {v:#x}")
    for n in range(len(good)):
        check(good[:n], f"cut at {n}")
    assert same > 0 and refused > 2 * len(good)


def flip_hex_digit(text: str, secret: str) -> str:
    """Change one hex digit of `secret` inside `text`, as a careless edit would."""
    at = text.index(secret) + 17
    digit = "0" if text[at] != "0" else "1"
    return text[:at] + digit + text[at + 1 :]


def test_a_changed_key_digit_stops_the_router_before_it_writes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    path = tmp_path / "log.keys"
    router = sealbus.Router(log, keys=path, allow_schemaless=True)
    p = router.principal("p")
    router.policy.allow_publish(p, "t.*")
    router.producer(p).publish("t.x", {"n": 1})
    router.close()
    good = path.read_text()
    active = KeyRing.load(path).active_key_id
    secret = key_hex(path)[0]
    path.write_text(flip_hex_digit(good, secret))
    path.chmod(0o600)
    before = sorted((f.name, f.stat().st_size) for f in log.iterdir())
    with pytest.raises(sealbus.KeyFileError) as exc:
        sealbus.Router(log, keys=path, allow_schemaless=True)
    assert exc.value.path == str(path)
    assert exc.value.key_id == active
    assert "check value" in str(exc.value) and str(path) in str(exc.value) and active in str(exc.value)
    assert secret[:16] not in str(exc.value) and secret[-16:] not in str(exc.value)
    assert sorted((f.name, f.stat().st_size) for f in log.iterdir()) == before, "nothing written"
    # A lowered high-water mark is refused too, naming its key.
    data = json.loads(good)
    data["keys"][0]["nonce_high_water"] -= 1
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(sealbus.KeyFileError, match="nonce_high_water") as exc:
        KeyRing.load(path)
    assert exc.value.key_id == data["keys"][0]["id"]
    path.write_text(good)
    assert KeyRing.load(path).active_key_id == active


def test_version_1_files_are_read_and_upgraded_on_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "old.keys"
    key = os.urandom(32)
    old = {
        "format": "sealbus-keyring",
        "version": 1,
        "active": "k-old",
        "max_seals_per_key": 1000,
        "keys": [
            {"id": "k-gone", "state": "destroyed", "created": 1},
            {"id": "k-old", "state": "active", "created": 2, "key": key.hex(), "nonce_high_water": 10},
        ],
    }
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    report = sealbus.keys.inspect_key_file(path)
    assert (report["version"], report["verified"]) == (1, False)
    ring = KeyRing.load(path)
    frame = seal(ring, b"upgraded")  # reserves counters: the file is written anew
    report = sealbus.keys.inspect_key_file(path)
    assert (report["version"], report["verified"]) == (2, True)
    assert [k["id"] for k in report["keys"]] == ["k-gone", "k-old"]
    assert open_(KeyRing.load(path), frame) == b"upgraded"
    assert decode_frame(frame)["key_id"] == "k-old"
    assert int.from_bytes(decode_frame(frame)["nonce"][8:], "big") >= 10


def test_error_texts_never_hold_key_hex(tmp_path: Path) -> None:
    path, secrets_hex = damaged_ring_file(tmp_path)
    good = path.read_text()
    variants = [flip_hex_digit(good, h) for h in secrets_hex]
    # A ':' turned into ',' makes a key's hex a JSON field name, which serde would quote.
    variants += [good.replace(f'"key": "{h}"', f'"key", "{h}"') for h in secrets_hex]
    variants += [good.replace(f'"{h}"', f'"{h.upper()}"') for h in secrets_hex]
    variants += [good.replace(f'"{h}"', f"{h}") for h in secrets_hex]
    for text in variants:
        assert text != good
        path.write_text(text)
        with pytest.raises(sealbus.KeyFileError) as exc:
            KeyRing.load(path)
        shown = f"{exc.value} {exc.value!r} {exc.value.reason}"
        for h in secrets_hex:
            assert h[:16] not in shown.lower() and h[-16:] not in shown.lower(), shown
